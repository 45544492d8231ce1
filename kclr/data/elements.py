"""Element readers: encoded images of files, TFRecord shards and TFDS, not yet decoded.

Each reader yields `{"data": encoded bytes, "label": int32, "filename": string}`,
sharded per input pipeline, shuffled and repeated as asked; `kclr.data.build` decodes
and augments them.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kclr.data import decode
from kclr.data.hf_sources import FETCH_ROWS
from kclr.data.source_types import Source
from kclr.data.tfds_sources import import_tfds

AUTOTUNE = tf.data.AUTOTUNE


def ordered(dataset, size: int, shard: int, num_shards: int, shuffle: bool, seed, repeat: bool):
    """`dataset` (of `size` elements) sharded, shuffled each pass (seeded) and repeated."""
    if num_shards > 1:
        dataset = dataset.shard(num_shards, shard)
    if shuffle:
        dataset = dataset.shuffle(size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset


def encoded_elements(
    source: Source,
    batch_size: int,
    seed: int,
    shuffle: bool,
    repeat: bool,
    shard: int,
    num_shards: int,
) -> tf.data.Dataset:
    """A dataset of `{"data": encoded bytes, "label": int32, "filename": string}`."""
    if source.kind == "files":
        labels = source.labels if source.labels is not None else np.full(len(source.files), -1)
        dataset = tf.data.Dataset.from_tensor_slices(
            {"filename": source.files, "label": np.asarray(labels, np.int32)}
        )
        dataset = ordered(dataset, len(source.files), shard, num_shards, shuffle, seed, repeat)
        return dataset.map(
            lambda e: {**e, "data": tf.io.read_file(e["filename"])},
            num_parallel_calls=AUTOTUNE,
        )
    if source.kind == "tfrecord":
        shards = tf.data.Dataset.from_tensor_slices(source.files)
        by_file = num_shards > 1 and len(source.files) >= num_shards
        if by_file:
            shards = shards.shard(num_shards, shard)
        if shuffle:
            shards = shards.shuffle(len(source.files), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            shards = shards.repeat()
        dataset = shards.interleave(
            lambda f: tf.data.TFRecordDataset(f, buffer_size=8 << 20),
            cycle_length=min(16, len(source.files)),
            num_parallel_calls=AUTOTUNE,
        )
        if num_shards > 1 and not by_file:
            dataset = dataset.shard(num_shards, shard)
        dataset = dataset.map(
            lambda r: dict(zip(("data", "label", "filename"), decode.parse_tfrecord(r, source.label_offset), strict=True)),
            num_parallel_calls=AUTOTUNE,
        )  # fmt: skip
        dataset = _filter_names(dataset, source.filename_filter)
        if shuffle:
            dataset = dataset.shuffle(10 * batch_size, seed=seed)
        return dataset
    if source.kind == "hf":
        return _hf_elements(source, shard, num_shards, shuffle, seed, repeat)
    return _tfds_elements(source, batch_size, seed, shuffle, repeat, shard, num_shards)


def _hf_elements(source, shard, num_shards, shuffle, seed, repeat):
    """Rows of a Hugging Face dataset (`kclr.data.hf_sources.HFRows`), shuffled and sharded
    by position like a folder's files, read from Arrow `FETCH_ROWS` at a time."""
    rows = source.rows
    dataset = ordered(tf.data.Dataset.range(len(rows)), len(rows), shard, num_shards, shuffle,
                      seed, repeat)  # fmt: skip

    def fetch(positions):
        datas, labels, names = tf.numpy_function(
            rows.fetch, [positions], [tf.string, tf.int32, tf.string], stateful=False
        )
        return {
            "data": tf.reshape(datas, [-1]),
            "label": tf.reshape(labels, [-1]),
            "filename": tf.reshape(names, [-1]),
        }

    dataset = dataset.batch(FETCH_ROWS).map(fetch, num_parallel_calls=AUTOTUNE)
    return dataset.unbatch().prefetch(FETCH_ROWS)  # the decoders never wait for a fetch


def _tfds_elements(source, batch_size, seed, shuffle, repeat, shard, num_shards):
    tfds = import_tfds()
    read_config = tfds.ReadConfig(
        shuffle_seed=seed, interleave_cycle_length=32, try_autocache=False
    )
    dataset = tfds.load(
        source.tfds_name,
        split=source.tfds_split,
        data_dir=source.data_dir,
        shuffle_files=shuffle,
        decoders={"image": tfds.decode.SkipDecoding()},
        read_config=read_config,
    )
    if num_shards > 1:
        dataset = dataset.shard(num_shards, shard)

    def to_element(example):
        return {
            "data": example["image"],
            "label": tf.cast(example.get("label", -1), tf.int32),
            "filename": example.get("file_name", tf.constant("")),
        }

    dataset = dataset.map(to_element, num_parallel_calls=AUTOTUNE)
    dataset = _filter_names(dataset, source.filename_filter)
    if shuffle:
        dataset = dataset.shuffle(10 * batch_size, seed=seed)
    if repeat:
        dataset = dataset.repeat()
    return dataset


def _filter_names(dataset, names):
    if names is None:
        return dataset
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(sorted(names)), tf.ones([len(names)], tf.int32)
        ),
        default_value=0,
    )
    return dataset.filter(
        lambda e: table.lookup(tf.strings.regex_replace(e["filename"], r"^.*/", "")) > 0
    )
