"""The built-in demo dataset: deterministic, balanced, and labelled by shape only."""

from __future__ import annotations

import numpy as np
import pytest

from kclr.data import demo


def test_shapes_dtypes_balance_and_cache():
    images, labels = demo.load("train")
    assert images.shape == (6000, demo.IMAGE_SIZE, demo.IMAGE_SIZE, 3) and images.dtype == np.uint8
    assert labels.shape == (6000,) and labels.dtype == np.int32
    assert np.bincount(labels, minlength=demo.NUM_CLASSES).tolist() == [600] * 10
    assert len(demo.CLASS_NAMES) == demo.NUM_CLASSES == 10
    assert demo.load("train")[0] is images  # cached
    assert not images.flags.writeable
    test_images, test_labels = demo.load("test")
    assert test_images.shape[0] == 1000 and np.bincount(test_labels).tolist() == [100] * 10
    assert images.std() > 40  # varied colours and backgrounds, not a blank canvas


def test_generation_is_deterministic_and_splits_differ():
    again, again_labels = demo._generate("test")
    images, labels = demo.load("test")
    np.testing.assert_array_equal(again, images)
    np.testing.assert_array_equal(again_labels, labels)
    assert not np.array_equal(demo.load("train")[0][:1000], images)


def test_colour_does_not_carry_the_label():
    images, labels = demo.load("train")
    mean_colour = images.reshape(len(images), -1, 3).mean(1)  # [N, 3]
    per_class = np.stack([mean_colour[labels == c].mean(0) for c in range(10)])
    # Class means of the average colour agree within a few grey levels (out of 255).
    assert np.abs(per_class - mean_colour.mean(0)).max() < 8.0


def test_raw_pixels_are_a_weak_baseline():
    from kclr.evaluation import knn_accuracy

    x, y = demo.load("train")
    xt, yt = demo.load("test")
    flat = lambda a: a.reshape(len(a), -1).astype(np.float32) / 255.0  # noqa: E731
    accuracy = knn_accuracy(flat(x), y, flat(xt), yt, k=200)
    assert 10.0 <= accuracy < 30.0


def test_unknown_split_is_a_clear_error():
    with pytest.raises(ValueError, match="Expected one of \\['test', 'train'\\]"):
        demo.load("validation")
