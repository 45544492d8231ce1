"""One input pipeline (one shard): read, decode, augment and batch a `Source`.

`build_dataset` is what `kclr.data.pretraining_dataset` and `kclr.data.labelled_dataset`
run for each input pipeline; the layouts (per-file decoding and augmentation for
encoded images, batched augmentation for arrays) are described in `kclr.data.pipeline`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from kclr.augment.multi_view import MultiView
from kclr.augment.pipeline import AugmentationPipeline, split_stages
from kclr.data import decode
from kclr.data.elements import encoded_elements, ordered
from kclr.data.photometric import to_uint8
from kclr.data.seeding import BATCH_SALT, ELEMENT_SALT, fold
from kclr.data.source_types import Source

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """How one input pipeline reads, augments and batches a `Source`.

    Attributes:
        augmenter: the single-view augmenter (a recipe's `AugmentationPipeline` or a layer).
        image_size: output side `S`.
        views: views per image.
        batch_size: images per batch (per replica when distributed).
        seed: the pipeline seed (shuffling and augmentation).
        shuffle, repeat: shuffle the examples; repeat them without end.
        deterministic: keep the element order (and thus batch `i`) fixed.
        drop_remainder: drop a last, smaller batch.
        with_filenames: also yield each image's file name.
        shard, num_shards: this input pipeline's share of the examples.
        skip_batches: batches dropped before any decoding or augmentation.
        photometric_on_host: run the recipe's photometric stage here; without it the
            views are uint8 and the stage runs on the device.
    """

    augmenter: Any
    image_size: int
    views: int
    batch_size: int
    seed: int = 0
    shuffle: bool = False
    repeat: bool = False
    deterministic: bool = True
    drop_remainder: bool = False
    with_filenames: bool = False
    shard: int = 0
    num_shards: int = 1
    skip_batches: int = 0
    photometric_on_host: bool = True


def build_dataset(
    source: Source, options: PipelineOptions | None = None, **fields: Any
) -> tf.data.Dataset:
    """Builds one input pipeline (one shard) of dicts `{"views", "labels"?, "filenames"?}`.

    Args:
        source: a resolved `Source`.
        options: a `PipelineOptions`.
        **fields: `PipelineOptions` fields, replacing those of `options` (or making the
            options when `options` is None, the keyword form of earlier releases).
    """
    if options is None:
        options = PipelineOptions(**fields)
    elif fields:
        options = dataclasses.replace(options, **fields)
    check_views(options.augmenter, options.views)
    base_seed = tf.constant([options.seed, options.shard], tf.int64)
    if source.kind == "arrays":
        dataset = _array_pipeline(source, options, base_seed)
    else:
        dataset = encoded_elements(
            source, options.batch_size, options.seed, options.shuffle, options.repeat,
            options.shard, options.num_shards,
        )  # fmt: skip
        dataset = _decode_and_augment(dataset, source, options, base_seed)
    tf_options = tf.data.Options()
    tf_options.deterministic = options.deterministic
    tf_options.experimental_optimization.map_parallelization = True
    tf_options.autotune.enabled = False  # its thread delays the iterator's deletion: teardown.py
    return dataset.with_options(tf_options).prefetch(1)


def _array_pipeline(source: Source, options: PipelineOptions, base_seed: tf.Tensor):
    augmenter, views, photometric_on_host = (
        options.augmenter,
        options.views,
        options.photometric_on_host,
    )
    images = tf.constant(source.images)
    labels = tf.constant(source.labels) if source.labels is not None else None
    if photometric_on_host:
        multi_view = (
            augmenter if isinstance(augmenter, MultiView) else MultiView(augmenter, views=views)
        )
    else:
        geometric, _ = split_stages(augmenter)
        multi_view = MultiView(AugmentationPipeline(geometric, clip=False), views=views)
    dataset = tf.data.Dataset.range(len(source.images))
    dataset = ordered(
        dataset, len(source.images), options.shard, options.num_shards, options.shuffle,
        options.seed, options.repeat,
    )  # fmt: skip
    dataset = dataset.batch(options.batch_size, drop_remainder=options.drop_remainder)
    dataset = dataset.enumerate()
    if options.skip_batches:
        dataset = dataset.skip(options.skip_batches)

    def augment(step, indices):
        batch = tf.image.convert_image_dtype(tf.gather(images, indices), tf.float32)
        seed_ = fold(base_seed, BATCH_SALT, step)
        out = {"views": multi_view(batch, training=True, seed=seed_)}
        if not photometric_on_host:
            out["views"] = to_uint8(out["views"])
        if labels is not None:
            out["labels"] = tf.gather(labels, indices)
        if options.with_filenames:
            out["filenames"] = tf.strings.join(["index:", tf.strings.as_string(indices)])
        return out

    return dataset.map(augment, num_parallel_calls=AUTOTUNE)


def _decode_and_augment(dataset, source: Source, options: PipelineOptions, base_seed):
    augmenter, views, photometric_on_host = (
        options.augmenter,
        options.views,
        options.photometric_on_host,
    )
    geometric, photometric = split_stages(augmenter)
    # The recipe's first geometric steps may crop (`sample_boxes`) and flip
    # (`decode_flips`) at decode time, on the encoded file; the rest runs on the views.
    crop = flip = None
    if geometric and hasattr(geometric[0], "sample_boxes"):
        crop, geometric = geometric[0], geometric[1:]
    if crop is not None and geometric and hasattr(geometric[0], "decode_flips"):
        flip, geometric = geometric[0], geometric[1:]
    more_geometry = AugmentationPipeline(geometric, clip=False) if geometric else None
    clip = getattr(augmenter, "clip", True)
    host_stage = None
    if photometric_on_host and (photometric or clip):
        host_stage = AugmentationPipeline(photometric, clip=clip)
    dtype = tf.float32 if photometric_on_host else tf.uint8
    size = (options.image_size, options.image_size)
    method = getattr(crop, "interpolation", "bicubic")

    def boxes_fn(seed):
        def fn(height, width):
            if crop is not None:
                return crop.sample_boxes(seed, views, height, width)
            return tf.tile(tf.stack([0, 0, height, width])[None], [views, 1])

        return fn

    def decode_element(index, element):
        seed = fold(base_seed, ELEMENT_SALT, index)
        flips = None if flip is None else flip.decode_flips(fold(seed, 1, 0), views)
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
        if options.with_filenames:
            out["filenames"] = element["filename"]
        return out

    dataset = dataset.enumerate()
    if options.skip_batches:
        dataset = dataset.skip(options.skip_batches * options.batch_size)
    dataset = dataset.map(decode_element, num_parallel_calls=AUTOTUNE)
    dataset = dataset.ignore_errors(log_warning=True)
    return dataset.batch(options.batch_size, drop_remainder=options.drop_remainder)


def check_views(augmenter, views: int) -> None:
    """An asymmetric recipe (a `MultiView` of one pipeline per view) fixes the views."""
    if isinstance(augmenter, MultiView) and augmenter.views != views:
        raise ValueError(
            f"The recipe {augmenter.name!r} makes {augmenter.views} views (one pipeline per "
            f"view), but the pipeline was asked for {views} views. Set `data.views` "
            f"(`views=`) to {augmenter.views}, or choose a recipe of one view."
        )


def _keep_dtype(images: tf.Tensor, dtype) -> tf.Tensor:
    return to_uint8(images) if dtype == tf.uint8 and images.dtype != tf.uint8 else images
