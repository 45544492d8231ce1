"""Folders without a split: the held-out part and the whole-folder read."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from kclr.data import holdout
from kclr.data.source_types import NoTestSplitError


def _folder(root, counts):
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        folder = root / name if name else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(
                folder / f"{i}.png"
            )
    return root


def test_split_is_seeded_class_balanced_and_disjoint(tmp_path):
    root = _folder(tmp_path / "photos", {"cat": 20, "dog": 30, "eel": 1})
    train, test, held = holdout.resolve_splits(root)
    assert held is not None and held.test is test and held.train is train
    assert np.bincount(test.labels, minlength=3).tolist() == [2, 3, 0]  # 10%; eel has 1 image
    assert np.bincount(train.labels, minlength=3).tolist() == [18, 27, 1]
    assert not set(train.files) & set(test.files)
    assert len(train) + len(test) == 51
    again = holdout.resolve_splits(root)[1]
    assert again.files == test.files  # same seed, same part
    other = holdout.resolve_splits(root, seed=1)[1]
    assert other.files != test.files
    line = held.describe()
    assert "holding out 5 of 51 images (10.0% of each of 2 classes, seed 0)" in line
    assert held.record() == {
        "source": str(root), "fraction": 0.1, "seed": 0, "held_out": 5, "train": 46, "classes": 2,
    }  # fmt: skip


def test_split_is_bounded_by_max_examples(tmp_path):
    root = _folder(tmp_path / "photos", {"a": 40, "b": 40})
    _, test, held = holdout.resolve_splits(root, fraction=0.5, max_examples=6)
    assert len(test) == 6 and np.bincount(test.labels).tolist() == [3, 3]
    assert held.fraction == pytest.approx(6 / 80)


def test_flat_and_singleton_folders(tmp_path):
    flat = _folder(tmp_path / "flat", {"": 5})
    with pytest.raises(NoTestSplitError, match="unlabelled images .* class subfolders"):
        holdout.resolve_splits(flat)
    source, note = holdout.resolve_whole(flat, "test")
    assert len(source) == 5 and note == f"{str(flat)!r} has no 'test' split: reading all 5 images."
    singles = _folder(tmp_path / "singles", {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="no class with two or more images"):
        holdout.resolve_splits(singles)


def test_a_folder_with_a_split_is_not_held_out(tmp_path):
    _folder(tmp_path / "data" / "train", {"a": 3, "b": 3})
    _folder(tmp_path / "data" / "test", {"a": 2, "b": 2})
    train, test, held = holdout.resolve_splits(tmp_path / "data")
    assert held is None and len(train) == 6 and len(test) == 4
    source, note = holdout.resolve_whole(tmp_path / "data", "test")
    assert note is None and len(source) == 4
