"""`eval.baselines`: raw pixels and a random encoder for image folders as for arrays, and
`eval.monitor_max_examples` bounds a folder's memory bank."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from kclr.evaluation.monitor import knn_data, knn_table
from kclr.evaluation.protocols import KNNProtocol


def _images(rng, red: bool, count: int) -> np.ndarray:
    """Reddish or bluish noise: classes that cosine kNN on raw pixels separates."""
    images = rng.integers(0, 60, (count, 8, 8, 3))
    images[..., 0 if red else 2] += 150
    return images.astype(np.uint8)


@pytest.fixture
def splits(tmp_path):
    """train/ and test/ class folders `red` and `blue` (raw pixels separate them)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, count in (("train", 6), ("test", 3)):
        images, labels = [], []
        for label, name in enumerate(("blue", "red")):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            block = _images(rng, name == "red", count)
            for i, image in enumerate(block):
                tf.io.write_file(str(folder / f"{i}.png"), tf.io.encode_png(image))
            images.append(block)
            labels.append(np.full(count, label))
        arrays[split] = (np.concatenate(images), np.concatenate(labels))
    return tmp_path, arrays


def _encoder():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(4)])


def test_a_folder_gets_both_baselines_and_the_same_raw_pixels_as_arrays(splits):
    root, arrays = splits
    protocol = KNNProtocol(k=3)
    folder = knn_table(_encoder(), knn_data(str(root), 8, None), protocol, _encoder())
    assert set(folder) == {"raw_pixels", "random_encoder", "pretrained_encoder"}
    assert folder["raw_pixels"] == 100.0  # red vs blue
    # the raw-pixel reference (NumPy only): flattened uint8 / 255
    flat = lambda x: x.reshape(len(x), -1).astype(np.float32) / 255.0  # noqa: E731
    reference = protocol.run(
        {"features": flat(arrays["train"][0]), "labels": arrays["train"][1]},
        {"features": flat(arrays["test"][0]), "labels": arrays["test"][1]},
    )["top1"]
    from_arrays = knn_table(_encoder(), knn_data(arrays, 8, None), protocol, _encoder())
    assert from_arrays["raw_pixels"] == reference == folder["raw_pixels"]
    np.testing.assert_allclose(folder["random_encoder"], from_arrays["random_encoder"], atol=1e-6)


def test_monitor_max_examples_bounds_a_folder_with_a_class_balanced_subset(splits):
    root, _ = splits
    train, test = knn_data(str(root), 8, max_examples=4)
    labels = np.concatenate([y.numpy() for _, y in train])
    assert sorted(labels.tolist()) == [0, 0, 1, 1]
    assert sum(len(y) for _, y in test) == 6  # the test split is whole
    full, _ = knn_data(str(root), 8, max_examples=None)
    assert sum(len(y) for _, y in full) == 12
