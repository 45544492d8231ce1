"""Hugging Face datasets as a source (`hf:`), from tiny datasets saved with `save_to_disk`."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

datasets = pytest.importorskip("datasets")

from kclr import data as kdata  # noqa: E402
from kclr.data import bad_files, hf_sources, holdout  # noqa: E402
from kclr.data.source_types import NoTestSplitError, UnreadableSourceError  # noqa: E402


def _png(value: int) -> bytes:
    pixels = np.full((8, 8, 3), value, np.uint8)
    pixels[0, 0] = (255 - value, 0, value)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _dataset(count: int, bad: int = 0):
    images = [{"bytes": _png(10 * i), "path": None} for i in range(count)]
    for i in range(bad):
        images[i] = {"bytes": b"not an image", "path": None}
    features = datasets.Features({
        "caption": datasets.Value("string"),
        "picture": datasets.Image(),
        "kind": datasets.ClassLabel(names=["even", "odd"]),
        "number": datasets.Value("int64"),
    })  # fmt: skip
    return datasets.Dataset.from_dict(
        {"caption": [f"c{i}" for i in range(count)], "picture": images,
         "kind": [i % 2 for i in range(count)], "number": [i % 3 for i in range(count)]},
        features=features,
    )  # fmt: skip


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    datasets.DatasetDict({"train": _dataset(10), "validation": _dataset(4)}).save_to_disk(
        str(root / "dict")
    )
    _dataset(12).save_to_disk(str(root / "single"))
    _dataset(3, bad=3).save_to_disk(str(root / "all_bad"))
    _dataset(10, bad=1).save_to_disk(str(root / "bad"))
    return root


def test_parse_spec():
    assert hf_sources.parse_spec("owner/name") == ("owner/name", None, None)
    assert hf_sources.parse_spec("owner/name@v1.0:test") == ("owner/name", "v1.0", "test")
    assert hf_sources.parse_spec("owner/name:train") == ("owner/name", None, "train")
    with pytest.raises(ValueError, match=r"expected 'hf:NAME\[@REVISION\]\[:SPLIT\]'"):
        hf_sources.parse_spec("owner/name@:train")


def test_splits_columns_and_pixels(saved):
    spec = f"hf:{saved / 'dict'}"
    train = kdata.resolve_source(spec, "train")
    test = kdata.resolve_source(spec, "test")  # the dataset's 'validation'
    assert (train.kind, len(train), len(test)) == ("hf", 10, 4)
    assert train.name == f"hf:{saved / 'dict'}[train]" and test.name.endswith("[validation]")
    assert train.class_names == ["even", "odd"] and train.labels.tolist() == [0, 1] * 5
    images, labels = next(iter(kdata.labelled_dataset(spec, "train", image_size=8, batch_size=10)))
    assert images.shape == (10, 8, 8, 3) and labels.numpy().tolist() == [0, 1] * 5
    expected = np.stack([np.asarray(Image.open(io.BytesIO(_png(10 * i)))) for i in range(10)])
    np.testing.assert_allclose(images.numpy() * 255, expected, atol=1.0)  # decoded as a folder's
    views = next(iter(kdata.pretraining_dataset(spec, recipe="simclr_cifar", image_size=8,
                                                global_batch_size=4, seed=0)))  # fmt: skip
    assert views["views"].shape == (4, 2, 8, 8, 3)
    by_name = kdata.resolve_source(spec, "train", image_column="picture", label_column="number")
    assert by_name.labels.tolist() == [i % 3 for i in range(10)] and by_name.class_names is None


def test_one_split_and_holdout(saved):
    spec = f"hf:{saved / 'dict'}:validation"
    assert len(kdata.resolve_source(spec, "train")) == 4
    with pytest.raises(NoTestSplitError, match="names one split"):
        kdata.resolve_source(spec, "test")
    train, test, held = holdout.resolve_splits(f"hf:{saved / 'single'}", fraction=0.25)
    assert held is not None and len(test) == 4 and len(train) == 8
    assert np.bincount(test.labels).tolist() == [2, 2]
    assert held.describe().startswith(
        f"'hf:{saved / 'single'}[train]' has labels but no train/test"
    )


def test_fit_reads_the_column_keys_before_writing_anything(saved, tmp_path):
    from kclr.run import config
    from kclr.run import fit as runs

    data = {"source": f"hf:{saved / 'dict'}", "image_column": "caption"}
    cfg = config.resolve("tiny", values={"data": data})
    with pytest.raises(ValueError, match=r"Column 'caption' .* not an image"):
        runs.fit(cfg, out=tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_bad_input_errors(saved):
    spec = f"hf:{saved / 'dict'}"
    with pytest.raises(ValueError, match=r"has no split 'nope'; available: train, validation"):
        kdata.resolve_source(f"{spec}:nope", "train")
    with pytest.raises(
        ValueError, match=r"Column 'caption' .* not an image. Image columns: picture"
    ):
        kdata.resolve_source(spec, "train", image_column="caption")
    with pytest.raises(ValueError, match=r"`data.image_column='photo'` is not a column"):
        kdata.resolve_source(spec, "train", image_column="photo")
    with pytest.raises(ValueError, match=r"Column 'caption' .* not a class label"):
        kdata.resolve_source(spec, "train", label_column="caption")
    with pytest.raises(
        UnreadableSourceError, match=r"no readable images \(3 row\(s\) of column 'picture'"
    ):
        kdata.resolve_source(f"hf:{saved / 'all_bad'}", "train")
    text_only = datasets.Dataset.from_dict({"caption": ["a", "b"]})
    text_only.save_to_disk(str(saved / "text"))
    with pytest.raises(UnreadableSourceError, match=r"no image column .* `data.image_column`"):
        kdata.resolve_source(f"hf:{saved / 'text'}", "train")
    with pytest.raises(FileNotFoundError, match="save_to_disk"):
        kdata.resolve_source(f"hf:{saved / 'missing'}", "train")


def test_unreadable_images_count_against_max_bad_fraction(saved):
    source = kdata.resolve_source(f"hf:{saved / 'bad'}", "train")
    assert len(source) == 9
    summary = bad_files.report(source)
    assert (summary["count"], summary["total"]) == (1, 10)
    assert summary["examples"][0]["reason"] == "not a JPEG, PNG, GIF or BMP image"
    assert "row 0" in summary["examples"][0]["file"]
    with pytest.raises(bad_files.TooManyBadFilesError, match=r"1 of 10 image files \(10.00%\)"):
        bad_files.check_fraction(source, 0.01)
    assert bad_files.check_fraction(source, 0.2)["count"] == 1


def test_install_hint_without_datasets(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match=r"pip install kclr\[hf-datasets\]"):
        kdata.resolve_source("hf:owner/name", "train")
