"""One input pipeline (one shard): read, decode, augment and batch a `Source`.

`build_dataset` is what `kclr.data.pretraining_dataset` and `kclr.data.labelled_dataset`
run for each input pipeline; the layouts (per-file decoding and augmentation for
encoded images, batched augmentation for arrays) are described in `kclr.data.pipeline`.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from kclr.augment.base import bernoulli
from kclr.augment.center_crop import CenterCrop
from kclr.augment.multi_view import MultiView
from kclr.augment.pipeline import AugmentationPipeline, split_stages
from kclr.augment.random_flip import RandomFlip
from kclr.augment.random_resized_crop import RandomResizedCrop
from kclr.data import decode
from kclr.data.elements import encoded_elements, ordered
from kclr.data.photometric import to_uint8
from kclr.data.seeding import BATCH_SALT, ELEMENT_SALT, fold
from kclr.data.source_types import Source

AUTOTUNE = tf.data.AUTOTUNE


def build_dataset(
    source: Source,
    augmenter: Any,
    image_size: int,
    views: int,
    batch_size: int,
    seed: int,
    shuffle: bool,
    repeat: bool,
    deterministic: bool,
    drop_remainder: bool,
    with_filenames: bool,
    shard: int = 0,
    num_shards: int = 1,
    skip_batches: int = 0,
    photometric_on_host: bool = True,
) -> tf.data.Dataset:
    """Builds one input pipeline (one shard) of dicts `{"views", "labels"?, "filenames"?}`.

    `skip_batches` batches are dropped before any decoding or augmentation. With
    `photometric_on_host=False` the recipe's photometric stage is left out and the
    views are uint8.
    """
    base_seed = tf.constant([seed, shard], tf.int64)
    if source.kind == "arrays":
        dataset = _array_pipeline(
            source, augmenter, views, batch_size, seed, shuffle, repeat, drop_remainder,
            with_filenames, shard, num_shards, base_seed, skip_batches, photometric_on_host,
        )  # fmt: skip
    else:
        dataset = encoded_elements(source, batch_size, seed, shuffle, repeat, shard, num_shards)
        dataset = _decode_and_augment(
            dataset, source, augmenter, image_size, views, batch_size, drop_remainder,
            with_filenames, base_seed, skip_batches, photometric_on_host,
        )  # fmt: skip
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_optimization.map_parallelization = True
    return dataset.with_options(options).prefetch(1)


def _array_pipeline(
    source, augmenter, views, batch_size, seed, shuffle, repeat, drop_remainder,
    with_filenames, shard, num_shards, base_seed, skip_batches=0, photometric_on_host=True,
):  # fmt: skip
    images = tf.constant(source.images)
    labels = tf.constant(source.labels) if source.labels is not None else None
    if photometric_on_host:
        multi_view = MultiView(augmenter, views=views)
    else:
        geometric, _ = split_stages(augmenter)
        multi_view = MultiView(AugmentationPipeline(geometric, clip=False), views=views)
    dataset = tf.data.Dataset.range(len(source.images))
    dataset = ordered(dataset, len(source.images), shard, num_shards, shuffle, seed, repeat)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder).enumerate()
    if skip_batches:
        dataset = dataset.skip(skip_batches)

    def augment(step, indices):
        batch = tf.image.convert_image_dtype(tf.gather(images, indices), tf.float32)
        seed_ = fold(base_seed, BATCH_SALT, step)
        out = {"views": multi_view(batch, training=True, seed=seed_)}
        if not photometric_on_host:
            out["views"] = to_uint8(out["views"])
        if labels is not None:
            out["labels"] = tf.gather(labels, indices)
        if with_filenames:
            out["filenames"] = tf.strings.join(["index:", tf.strings.as_string(indices)])
        return out

    return dataset.map(augment, num_parallel_calls=AUTOTUNE)


def _decode_and_augment(
    dataset, source, augmenter, image_size, views, batch_size, drop_remainder,
    with_filenames, base_seed, skip_batches=0, photometric_on_host=True,
):  # fmt: skip
    geometric, photometric = split_stages(augmenter)
    crop = flip = None
    if geometric and isinstance(geometric[0], (RandomResizedCrop, CenterCrop)):
        crop, geometric = geometric[0], geometric[1:]
    if crop is not None and geometric and isinstance(geometric[0], RandomFlip):
        flip, geometric = geometric[0], geometric[1:]
    # Other geometric steps (rotations, vertical flips, plugins) run on the resized views.
    more_geometry = AugmentationPipeline(geometric, clip=False) if geometric else None
    clip = getattr(augmenter, "clip", True)
    host_stage = None
    if photometric_on_host and (photometric or clip):
        host_stage = AugmentationPipeline(photometric, clip=clip)
    dtype = tf.float32 if photometric_on_host else tf.uint8
    size = (image_size, image_size)
    method = getattr(crop, "interpolation", "bicubic")

    def boxes_fn(seed):
        def fn(height, width):
            if isinstance(crop, RandomResizedCrop):
                return crop.sample_boxes(seed, views, height, width)
            if isinstance(crop, CenterCrop):
                return tf.tile(crop.box(height, width)[None], [views, 1])
            return tf.tile(tf.stack([0, 0, height, width])[None], [views, 1])

        return fn

    def decode_element(index, element):
        seed = fold(base_seed, ELEMENT_SALT, index)
        flips = None
        if flip is not None and flip.mode == "horizontal":
            # RandomFlip's own draw for a batch of `views` images.
            flips = bernoulli(fold(seed, 1, 0), views, flip.probability, salt=0)
        crops = decode.decode_crops(element["data"], boxes_fn(seed), size, method, flips, dtype)
        if flip is not None and flips is None:
            crops = _keep_dtype(flip(crops, training=True, seed=fold(seed, 1, 0)), dtype)
        if more_geometry is not None:
            crops = _keep_dtype(more_geometry(crops, training=True, seed=fold(seed, 3, 0)), dtype)
        # The host photometric stage runs on the views of this file, inside the parallel
        # map: on a 2-core CPU this keeps every core busy and each view in cache, which
        # is faster than the same ops on a whole batch (memory-bound passes).
        if host_stage is not None:
            crops = host_stage(crops, training=True, seed=fold(seed, 2, 0))
        out = {"views": crops}
        if source.has_labels:
            out["labels"] = element["label"]
        if with_filenames:
            out["filenames"] = element["filename"]
        return out

    dataset = dataset.enumerate()
    if skip_batches:
        dataset = dataset.skip(skip_batches * batch_size)
    dataset = dataset.map(decode_element, num_parallel_calls=AUTOTUNE)
    dataset = dataset.ignore_errors(log_warning=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder)


def _keep_dtype(images: tf.Tensor, dtype) -> tf.Tensor:
    return to_uint8(images) if dtype == tf.uint8 and images.dtype != tf.uint8 else images
