"""The tf.data input pipelines: `pretraining_dataset` (views) and `labelled_dataset` (eval).

A recipe has two stages (`kclr.augment.AugmentationPipeline`): the geometric stage
(crop, flip) runs here, at decode time, on uint8; the photometric stage (colour,
grayscale, blur, ...) runs here too with `photometric="host"`, or inside the train step
on the accelerator with `photometric="device"` (then the views stay uint8 until the
device, a quarter of the bytes of float32).

Layout of `pretraining_dataset` for encoded images (folders, TFRecords, TFDS):

    files -> shard -> shuffle -> repeat -> enumerate
          -> map(one decode per file (cropped before decoding for one view), resize
                 of each uint8 crop, flip; host photometric stage on the [V, S, S, 3]
                 views of the file)                                              per file
          -> ignore_errors -> batch(drop_remainder) -> prefetch

The host photometric stage runs on the views of one file inside the parallel map: on
CPU this keeps every core busy and each view in cache, and measured faster than the
same ops on whole batches (memory-bound passes over `[B*V, S, S, 3]`, one batched
map call at a time).

and for NumPy arrays (already in memory, all one size) the recipe runs batched:

    indices -> shard -> shuffle -> repeat -> batch -> gather -> MultiView(stages) -> prefetch

Random parameters come from stateless ops seeded by `(seed, element index)` and
`(seed, batch index)`, so a run with a fixed `seed` and `deterministic=True` is
reproducible however many threads decode.
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf

from kclr.data import decode
from kclr.data.augmenter import augmenter as build_augmenter
from kclr.data.build import PipelineOptions, build_dataset
from kclr.data.photometric import resolve_photometric
from kclr.data.seeding import resolve_seed
from kclr.data.sources import Source, UnreadableSourceError, resolve_source

AUTOTUNE = tf.data.AUTOTUNE


def pretraining_dataset(
    source: Any,
    recipe: Any = "simclr",
    image_size: int = 224,
    views: int = 2,
    global_batch_size: int = 256,
    seed: int | None = None,
    shuffle: bool = True,
    repeat: bool = True,
    deterministic: bool = False,
    strategy: tf.distribute.Strategy | None = None,
    split: str = "train",
    label_fraction: float | None = None,
    subset_file: str | os.PathLike | None = None,
    start_step: int = 0,
    photometric: str = "host",
    **recipe_overrides: Any,
) -> tf.data.Dataset:
    """A tf.data pipeline of augmented views for contrastive pretraining.

    Each element is a dict `{"views": [B, views, S, S, 3], "labels": int32 [B]}`
    (`"labels"` only when the source has labels), with `B` the global batch size (or the
    per-replica batch size under a strategy), batched with `drop_remainder=True`, shuffled,
    repeated and prefetched. The crop is folded into decoding (a single JPEG view is
    cropped before decoding, several views share one decode) and only the uint8 crop
    is resized.

    The recipe's geometric stage (crop, flip) always runs here. Its photometric stage
    (colour, grayscale, blur, ...) runs here with `photometric="host"` (views are
    float32 in `[0, 1]`), or on the accelerator with `photometric="device"`: the views
    are then uint8 (`0..255`) and `kclr.ContrastiveTrainer(device_augmenter=
    kclr.data.photometric_stage(recipe, ...))` applies the photometric stage per
    replica inside `train_step`, with the same distribution of views. On that path the
    resized crop is rounded to uint8 before the colour jitter (at most 0.5/255 per
    pixel, and the bicubic overshoot is clipped there rather than after the jitter).

    Where kclr differs from the authors' pipeline (SimCLR `data.py`): it shuffles the
    file list (the whole list, each epoch) rather than decoded examples with a buffer of
    10 batches, which mixes better and keeps decoded images out of memory. The authors
    blur in the model; with `photometric="device"` kclr runs the blur (with colour and
    grayscale) on the accelerator too, with `"host"` in tf.data (same distribution).

    Args:
        source: anything `kclr.data.resolve_source` accepts ("demo", a folder,
            TFRecord shards, arrays, "tfds:NAME") or a `Source`.
        recipe: a recipe name (`kclr.augment.recipes`) or a Keras layer on `[B, H, W, 3]`.
            With a layer whose first step is not a crop, images are resized whole to
            `image_size` before it.
        image_size: output side `S`.
        views: number of views per image.
        global_batch_size: images per batch, summed over replicas.
        seed: seed of shuffling and augmentation (random when `None`).
        shuffle: shuffle the examples.
        repeat: repeat forever (training); False gives one pass.
        deterministic: keep the element order fixed despite parallel decoding (with a
            `seed`, the output is then reproducible).
        strategy: a `tf.distribute.Strategy`; when given, returns
            `strategy.distribute_datasets_from_function(...)` with one input pipeline per
            worker and per-replica batches of `global_batch_size / num_replicas`.
        split: `"train"` or `"test"`.
        label_fraction, subset_file: select a subset, see `resolve_source`.
        start_step: start at global batch `start_step` of the stream (to resume a run):
            the skipped batches are dropped before decoding and augmenting, so this is
            cheap, and the batches that follow equal those of an uninterrupted stream
            (random parameters are keyed by position, shuffling is seeded). With corrupt
            files in the source the position can shift by the files skipped.
        photometric: where the recipe's photometric stage runs: `"host"` (here, in
            tf.data), `"device"` (in the train step; the views are uint8), or `"auto"`
            (`"device"` when a GPU or TPU is present, else `"host"`).
        **recipe_overrides: keyword arguments for the recipe (e.g.
            `color_jitter_strength=0.5`, `blur=False`).

    Example:

    ```python
    dataset = kclr.data.pretraining_dataset("demo", recipe="simclr_cifar", image_size=32,
                                            global_batch_size=64, seed=0)
    batch = next(iter(dataset))
    batch["views"].shape  # (64, 2, 32, 32, 3)
    ```
    """
    source = resolve_source(source, split, label_fraction=label_fraction, subset_file=subset_file)
    augmenter = build_augmenter(recipe, image_size, recipe_overrides)
    seed = resolve_seed(seed)
    _check_batch(global_batch_size, strategy)
    _check_readable(source)
    if int(start_step) < 0:
        raise ValueError(f"start_step must be >= 0; received {start_step}.")
    options = PipelineOptions(
        augmenter=augmenter,
        image_size=int(image_size),
        views=int(views),
        batch_size=int(global_batch_size),
        seed=seed,
        shuffle=shuffle,
        repeat=repeat,
        deterministic=deterministic,
        drop_remainder=True,
        skip_batches=int(start_step),
        photometric_on_host=resolve_photometric(photometric) == "host",
    )
    if strategy is None:
        return build_dataset(source, options)
    return _distributed(strategy, source, global_batch_size, int(start_step), options)


def labelled_dataset(
    source: Any,
    split: str = "train",
    image_size: int = 224,
    batch_size: int = 256,
    recipe: Any = "eval",
    with_filenames: bool = False,
    label_fraction: float | None = None,
    subset_file: str | os.PathLike | None = None,
    shuffle: bool = False,
    repeat: bool = False,
    drop_remainder: bool = False,
    seed: int | None = None,
    **recipe_overrides: Any,
) -> tf.data.Dataset:
    """A finite, unshuffled dataset of `(images [B, S, S, 3], labels [B])` for evaluation.

    Used for linear evaluation, kNN monitoring, fine-tuning and feature extraction. The
    default `recipe="eval"` is the authors' 0.875 centre crop with bicubic resize (no
    crop at `image_size <= 32`); `recipe="finetune"` gives crop + flip for training a
    classifier. Unlabelled sources get label -1.

    Args:
        source: see `pretraining_dataset`.
        split: `"train"` or `"test"`.
        image_size: output side.
        batch_size: batch size (the last batch may be smaller unless `drop_remainder`).
        recipe: recipe name or Keras layer.
        with_filenames: also yield the file name of each image (`"index:N"` for arrays).
        label_fraction, subset_file: select a subset, see `resolve_source`.
        shuffle, repeat, drop_remainder, seed: for training uses (off by default).
        **recipe_overrides: keyword arguments for the recipe.

    Example:

    ```python
    test = kclr.data.labelled_dataset("demo", split="test", image_size=32, batch_size=100)
    images, labels = next(iter(test))
    ```
    """
    source = resolve_source(source, split, label_fraction=label_fraction, subset_file=subset_file)
    augmenter = build_augmenter(recipe, image_size, recipe_overrides)
    _check_readable(source)
    options = PipelineOptions(
        augmenter=augmenter,
        image_size=int(image_size),
        views=1,
        batch_size=batch_size,
        seed=resolve_seed(seed),
        shuffle=shuffle,
        repeat=repeat,
        drop_remainder=drop_remainder,
        with_filenames=with_filenames,
    )
    dataset = build_dataset(source, options)

    def to_tuple(batch):
        images = batch["views"][:, 0]
        labels = batch.get("labels")
        if labels is None:
            labels = tf.fill([tf.shape(images)[0]], -1)
        if with_filenames:
            return images, labels, batch["filenames"]
        return images, labels

    return dataset.map(to_tuple, num_parallel_calls=AUTOTUNE)


# ---------------------------------------------------------------------------- helpers
def _distributed(
    strategy: tf.distribute.Strategy,
    source: Source,
    global_batch_size: int,
    start_step: int,
    options: PipelineOptions,
) -> tf.distribute.DistributedDataset:
    """One `build_dataset` per input pipeline (worker) with per-replica batches."""

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        # Each input pipeline feeds its local replicas one batch each per global step.
        local = context.num_replicas_in_sync // context.num_input_pipelines
        return build_dataset(
            source,
            options,
            batch_size=context.get_per_replica_batch_size(global_batch_size),
            shard=context.input_pipeline_id,
            num_shards=context.num_input_pipelines,
            skip_batches=start_step * local,
        )

    return strategy.distribute_datasets_from_function(dataset_fn)


def _check_batch(global_batch_size, strategy):
    if int(global_batch_size) < 1:
        raise ValueError(f"global_batch_size must be >= 1; received {global_batch_size}.")
    if strategy is not None and global_batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f"global_batch_size={global_batch_size} does not divide across "
            f"{strategy.num_replicas_in_sync} replicas. Use a multiple of "
            f"{strategy.num_replicas_in_sync}, e.g. "
            f"{(global_batch_size // strategy.num_replicas_in_sync + 1) * strategy.num_replicas_in_sync}."
        )


def _check_readable(source: Source, tries: int = 8) -> None:
    """Fails fast when the first few encoded images of a source cannot be decoded."""
    if source.kind == "arrays":
        return
    if source.kind == "files":
        datas = (tf.io.read_file(f) for f in source.files[:tries])
    elif source.kind == "tfrecord":
        records = tf.data.TFRecordDataset(source.files[:tries]).take(tries)
        datas = (decode.parse_tfrecord(r)[0] for r in records)
    else:
        return
    errors = []
    for data in datas:
        try:
            decode.image_shape(data)
            tf.io.decode_image(data, channels=3, expand_animations=False)
            return
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as error:
            errors.append(error.message.splitlines()[0])
    raise UnreadableSourceError(
        f"Data source {source.name!r}: none of its first images could be decoded "
        f"({'; '.join(errors[:3]) or 'no records'}). Expected JPEG, PNG, GIF or BMP images "
        "(TFRecords: ImageNet layout with 'image/encoded')."
    )


__all__ = [
    "PipelineOptions",
    "build_dataset",
    "labelled_dataset",
    "pretraining_dataset",
]
