"""`kclr curate duplicates|select` end to end on a tiny folder with a tiny exported model."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from click.testing import CliRunner

import kclr.curate
from kclr.cli import main


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny random ResNet saved in the zoo format, 16 px input."""
    import keras

    from kclr import models, zoo

    keras.utils.set_random_seed(0)
    encoder = models.resnet18(width_multiplier=0.125, cifar_stem=True)
    encoder(np.zeros((1, 16, 16, 3), np.float32))
    path = tmp_path_factory.mktemp("model") / "export"
    zoo.save(encoder, path, preprocessing={"image_size": 16})
    return str(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two class folders of 6 random 16 px images, one byte-identical and one resized copy."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir()
        for k in range(6):
            pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{k}.png")
    (root / "a" / "copy.png").write_bytes((root / "a" / "0.png").read_bytes())
    Image.open(root / "b" / "3.png").resize((20, 20), Image.NEAREST).save(root / "b" / "big.png")
    return root


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_duplicates_cli_writes_the_report(model, folder, tmp_path):
    out = tmp_path / "report"
    result = _invoke("curate", "duplicates", model, "--data", folder, "--out", out,
                     "--threshold", "0.999")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "(1 byte-identical)" in result.output
    with open(out / "duplicates.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["path_a", "path_b", "similarity"]
    pairs = {frozenset((r[0].split("images")[-1], r[1].split("images")[-1])) for r in rows[1:]}
    assert frozenset(("0/a/0.png", "0/a/copy.png")) in pairs
    assert float(rows[1][2]) == 1.0
    assert (out / "duplicates.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "groups.csv").read_text().startswith("group,path\n")
    assert sorted(p.name for p in out.iterdir()) == ["duplicates.csv", "duplicates.png",
                                                     "groups.csv"]  # fmt: skip


def test_select_cli_and_the_python_api_agree(model, folder, tmp_path):
    out = tmp_path / "pick"
    result = _invoke("curate", "select", model, "--data", folder, "--budget", 5, "--out", out,
                     "--seed", 1)  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = (out / "selected.txt").read_text().splitlines()
    assert len(lines) == len(set(lines)) == 5
    # Never both of the byte-identical pair.
    assert not {str(folder / "a" / "0.png"), str(folder / "a" / "copy.png")} <= set(lines)
    assert (out / "selected.png").read_bytes()[:4] == b"\x89PNG"
    chosen = kclr.curate.select(model=model, data=str(folder), budget=5, seed=1)
    assert chosen.paths == lines
    # From the features `kclr extract` writes, the same choice.
    features = tmp_path / "f.npy"
    extracted = _invoke("extract", model, "--data", folder, "--split", "train", "--out", features)
    assert extracted.exit_code == 0, extracted.output
    again = _invoke("curate", "select", "--features", features, "--budget", 5, "--out",
                    tmp_path / "again", "--seed", 1)  # fmt: skip
    assert again.exit_code == 0, again.output
    assert (tmp_path / "again" / "selected.txt").read_text().splitlines() == lines


def test_select_around_a_labelled_list(model, folder, tmp_path):
    labelled = tmp_path / "labelled.txt"
    labelled.write_text(f"{folder / 'a' / '1.png'}\n{folder / 'b' / '2.png'}\n")
    result = _invoke("curate", "select", model, "--data", folder, "--budget", 10, "--out",
                     tmp_path / "o", "--labelled", labelled, "--method", "kcenter",
                     "--threshold", 0.9999)  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "o" / "selected.txt").read_text().splitlines()
    assert len(set(lines)) == 10 and not {str(folder / "a" / "1.png")} & set(lines)


def test_bad_inputs_are_clear_errors_and_write_nothing(model, folder, tmp_path):
    out = tmp_path / "out"
    result = _invoke("curate", "select", model, "--data", folder, "--budget", 100, "--out", out)
    assert result.exit_code == 1
    assert "budget=100 is larger than the 14 unlabelled images" in result.output
    assert "Lower --budget to at most 14" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _invoke("curate", "duplicates", model, "--data", empty, "--out", out)
    assert result.exit_code == 1 and "holds no images" in result.output
    assert "Point --data at a folder" in result.output
    result = _invoke("curate", "duplicates", "--budget", 3, "--out", out)
    assert result.exit_code == 2
    result = _invoke("curate", "duplicates", "--out", out)
    assert result.exit_code == 2 and "Pass MODEL and --data SOURCE, or --features" in result.output
    assert not out.exists()


def test_unreadable_images_are_named_or_skipped(model, folder, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(folder, data)
    (data / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    out = tmp_path / "out"
    result = _invoke("curate", "duplicates", model, "--data", data, "--out", out)
    assert result.exit_code == 1
    assert "broken.png (truncated PNG" in result.output and "--skip-unreadable" in result.output
    assert not out.exists()
    result = _invoke("curate", "duplicates", model, "--data", data, "--out", out,
                     "--skip-unreadable")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "broken.png" not in (out / "duplicates.csv").read_text()


def test_a_model_with_a_fixed_input_size_is_checked():
    import keras

    inputs = keras.Input((16, 16, 3))
    encoder = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
    with pytest.raises(kclr.curate.CurateInputError, match=r"takes 16x16 images.*--image-size 16"):
        kclr.curate.extract(encoder, "demo", image_size=32)


def test_a_failed_report_leaves_the_earlier_one_whole(tmp_path, monkeypatch):
    from kclr.curate import report

    out = tmp_path / "out"
    x = np.eye(4, dtype=np.float32)
    kclr.curate.select(x, ["a", "b", "c", "d"], budget=2, out=out)
    before = (out / "selected.txt").read_text()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "_sheet", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        kclr.curate.select(x, ["a", "b", "c", "d"], budget=3, out=out)
    assert (out / "selected.txt").read_text() == before
    assert sorted(p.name for p in out.iterdir()) == ["selected.png", "selected.txt"]
