"""Small on-disk image datasets for the data tests."""

import io
import pathlib

import numpy as np
import pytest
import tensorflow as tf


def _pixels(rng, height=40, width=48):
    return (rng.random((height, width, 3)) * 255).astype(np.uint8)


def write_jpeg(path, rng, **size):
    tf.io.write_file(str(path), tf.io.encode_jpeg(_pixels(rng, **size)))


@pytest.fixture
def image_folder(tmp_path: pathlib.Path) -> pathlib.Path:
    """Two classes, mixed formats: RGB/grayscale/CMYK JPEG, RGB/RGBA/grayscale PNG."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(3):
            write_jpeg(folder / f"{name}_{i}.jpg", rng, height=40 + 4 * i)
        tf.io.write_file(str(folder / f"{name}_p.png"), tf.io.encode_png(_pixels(rng)))
    buffer = io.BytesIO()
    Image.fromarray(_pixels(rng)).convert("CMYK").save(buffer, "JPEG")
    (tmp_path / "cat" / "cmyk.jpg").write_bytes(buffer.getvalue())
    Image.fromarray(_pixels(rng)[..., 0]).save(tmp_path / "dog" / "gray.jpg")
    Image.fromarray(_pixels(rng)[..., 0]).save(tmp_path / "dog" / "gray.png")
    rgba = np.concatenate([_pixels(rng), np.full((40, 48, 1), 128, np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "dog" / "rgba.png")
    return tmp_path


def write_tfrecords(directory, prefix, shards, per_shard, rng, label_base=0):
    names = []
    for s in range(shards):
        path = directory / f"{prefix}-{s:05d}-of-{shards:05d}"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for i in range(per_shard):
                label = (s * per_shard + i) % 3
                name = f"n0000{label}_{s}{i}.JPEG"
                names.append((name, label))
                encoded = tf.io.encode_jpeg(_pixels(rng)).numpy()
                feature = {
                    "image/encoded": tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[encoded])
                    ),
                    "image/class/label": tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[label + label_base])
                    ),
                    "image/filename": tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[name.encode()])
                    ),
                }
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(example.SerializeToString())
    return names
