"""Resolving data sources: folders, TFRecords, arrays, demo, subsets, bad input."""

import numpy as np
import pytest

import kclr.data as D
from kclr.data import sources, subsets

from .conftest import write_jpeg, write_tfrecords


def test_class_folder_gives_sorted_labels(image_folder):
    source = D.resolve_source(str(image_folder))
    assert source.kind == "files" and source.class_names == ["cat", "dog"]
    assert source.num_classes == 2 and source.has_labels
    assert len(source) == 12 == D.num_examples(str(image_folder))
    labels = dict(zip([p.split("/")[-1] for p in source.files], source.labels, strict=True))
    assert labels["cmyk.jpg"] == 0 and labels["rgba.png"] == 1


def test_flat_folder_is_unlabelled(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        write_jpeg(tmp_path / f"{i}.jpg", rng)
    source = D.resolve_source(str(tmp_path))
    assert not source.has_labels and source.labels is None and len(source) == 3


def test_split_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        (tmp_path / split / "a").mkdir(parents=True)
        for i in range(count):
            write_jpeg(tmp_path / split / "a" / f"{i}.jpg", rng)
    assert len(D.resolve_source(str(tmp_path), "train")) == 4
    assert len(D.resolve_source(str(tmp_path), "test")) == 2


def test_corrupt_files_skipped_counted_and_named(image_folder):
    (image_folder / "cat" / "garbage.jpg").write_bytes(b"not an image at all")
    whole = (image_folder / "cat" / "cat_0.jpg").read_bytes()
    (image_folder / "cat" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (image_folder / "dog" / "empty.png").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"Skipped 3 unreadable.*garbage\.jpg"):
        source = D.resolve_source(str(image_folder))
    assert len(source) == 12 and len(source.skipped) == 3
    reasons = dict((p.split("/")[-1], r) for p, r in source.skipped)
    assert reasons["truncated.jpg"].startswith("truncated JPEG")
    assert reasons["empty.png"] == "empty file"


def test_folder_without_readable_images_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.jpg").write_bytes(b"junk")
    with (
        pytest.warns(UserWarning),
        pytest.raises(sources.UnreadableSourceError, match="no readable"),
    ):
        D.resolve_source(str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(sources.UnreadableSourceError, match="holds no images"):
        D.resolve_source(str(empty))


def test_missing_path_error_names_path_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does-not-exist.*does not exist.*'demo'"):
        D.resolve_source(str(tmp_path / "does-not-exist"))


def test_no_test_split_is_an_error(image_folder):
    with pytest.raises(ValueError, match="no test split"):
        D.resolve_source(str(image_folder), "test")


def test_arrays_tuple_dict_and_errors():
    images = np.zeros([10, 8, 8, 3], np.uint8)
    labels = np.arange(10) % 2
    source = D.resolve_source((images, labels))
    assert source.kind == "arrays" and source.num_classes == 2 and len(source) == 10
    split = D.resolve_source({"train": (images, labels), "val": (images[:4], labels[:4])}, "test")
    assert len(split) == 4
    assert not D.resolve_source(images).has_labels
    assert D.resolve_source(np.zeros([3, 8, 8])).images.shape == (3, 8, 8, 3)
    with pytest.raises(ValueError, match="10 images but 9 labels"):
        D.resolve_source((images, labels[:9]))
    with pytest.raises(ValueError, match=r"received shape \(10, 8, 8, 5\)"):
        D.resolve_source(np.zeros([10, 8, 8, 5]))


def test_demo_source():
    source = D.resolve_source("demo", "test")
    from kclr.data import demo

    assert source.kind == "arrays" and source.num_classes == demo.NUM_CLASSES
    assert source.images.shape[1:] == (demo.IMAGE_SIZE, demo.IMAGE_SIZE, 3)


def test_label_fraction_is_deterministic_and_per_class():
    labels = np.repeat(np.arange(5), 200)
    first = subsets.label_fraction_indices(labels, 0.1)
    np.testing.assert_array_equal(first, subsets.label_fraction_indices(labels, 0.1))
    assert np.bincount(labels[first]).tolist() == [20] * 5
    assert len(subsets.label_fraction_indices(labels, 0.01)) == 10
    assert not np.array_equal(first, subsets.label_fraction_indices(labels, 0.1, seed=1))
    assert len(subsets.label_fraction_indices(np.array([0, 1, 1, 1]), 0.01)) == 2  # >= 1 each
    with pytest.raises(ValueError, match="label_fraction must be in"):
        subsets.label_fraction_indices(labels, 1.5)


def test_label_fraction_on_folder_and_arrays(image_folder):
    source = D.resolve_source(str(image_folder), label_fraction=0.2)
    assert np.bincount(source.labels).tolist() == [1, 1]
    arrays = D.resolve_source((np.zeros([20, 4, 4, 3]), np.arange(20) % 2), label_fraction=0.5)
    assert np.bincount(arrays.labels).tolist() == [5, 5]


def test_subset_file(image_folder, tmp_path):
    listing = tmp_path / "1percent.txt"
    listing.write_text("cat_1.jpg\n# a comment\n\nsomewhere/dog_p.png\n")
    source = D.resolve_source(str(image_folder), subset_file=listing)
    assert sorted(p.split("/")[-1] for p in source.files) == ["cat_1.jpg", "dog_p.png"]
    assert source.labels.tolist() == [0, 1]
    with pytest.raises(FileNotFoundError, match="one image file name per line"):
        D.resolve_source(str(image_folder), subset_file=tmp_path / "missing.txt")


def test_tfrecord_source_counts_labels_and_subsets(tmp_path):
    rng = np.random.default_rng(0)
    names = write_tfrecords(tmp_path, "train", 2, 6, rng, label_base=1)
    write_tfrecords(tmp_path, "validation", 1, 3, rng)
    source = D.resolve_source(str(tmp_path), "train", label_offset=-1)
    assert source.kind == "tfrecord" and len(source.files) == 2
    assert D.num_examples(source) == 12
    assert D.num_examples(D.resolve_source(str(tmp_path), "test")) == 3
    assert sorted(label for label, _ in sources.tfrecord_index(source)) == sorted(
        label for _, label in names
    )
    listing = tmp_path / "subset.txt"
    listing.write_text("\n".join(n for n, _ in names[:5]))
    assert D.num_examples(D.resolve_source(str(tmp_path), subset_file=listing)) == 5
    fraction = D.resolve_source(str(tmp_path), label_fraction=0.5, label_offset=-1)
    assert D.num_examples(fraction) == 6
