"""`kclr fit`, `kclr eval`, `kclr extract` on folders without a train/test split."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from kclr.cli import main
from kclr.run import config
from kclr.run import fit as runs

OVERRIDES = ["data.num_examples=null", "train.steps=2", "eval.health_examples=32"]


def _write_folder(root, classes: int, per_class: int):
    from kclr.data import demo

    images, labels = demo.load("test")
    for c in range(classes):
        folder = root / f"class{c}" if classes > 1 else root
        folder.mkdir(parents=True, exist_ok=True)
        for i, index in enumerate(np.flatnonzero(labels == c)[:per_class]):
            Image.fromarray(images[index]).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def class_folder_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("folders")
    photos = _write_folder(root / "photos", classes=4, per_class=12)
    cfg = config.resolve("tiny", values={"data": {"source": str(photos)}}, overrides=OVERRIDES)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        result = runs.fit(cfg, out=root / "run", verbose=2)
    return photos, result, log.getvalue()


def test_class_folder_without_split_holds_out_a_part(class_folder_run):
    photos, result, log = class_folder_run
    assert (
        f"{str(photos)!r} has class subfolders but no train/test split: holding out 4 of 48 "
        "images (10.0% of each of 4 classes, seed 0) as the kNN test split; the other 44 are "
        "the train split. Training uses the train split."
    ) in log
    assert f"Training tiny on {str(photos)!r}: 44 examples" in log
    assert "epoch 1: effective rank" in log
    run_dir = result.run_dir
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["eval"]["holdout_fraction"] == 0.1 and saved["eval"]["holdout_seed"] == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["holdout"] == {
        "source": str(photos), "fraction": 0.1, "seed": 0, "held_out": 4, "train": 44,
        "classes": 4,
    }  # fmt: skip
    assert "pretrained_encoder" in results["knn"]
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert {"knn_top1", "rankme", "alignment", "uniformity"} <= set(rows[0])
    assert 1.0 <= float(rows[0]["rankme"]) <= 32  # min(32 views, 64 dims)
    assert -4.0 <= float(rows[0]["uniformity"]) <= 0.0
    assert 0.0 <= float(rows[0]["alignment"]) <= 4.0
    meta = (run_dir / "logs" / "train" / "metadata.tsv").read_text().splitlines()
    assert len(meta) == 1 + 4 and all(row.split("\t")[1].startswith("class") for row in meta[1:])


def test_kclr_eval_and_extract_read_the_same_folder(class_folder_run, tmp_path):
    photos, result, _ = class_folder_run
    runner = CliRunner()
    knn = runner.invoke(
        main, ["eval", "knn", str(result.export_dir), "--data", str(photos), "--k", "5",
               "--no-write"],
    )  # fmt: skip
    assert knn.exit_code == 0, knn.output
    assert "knn" in knn.output
    out = tmp_path / "f.npy"
    extract = runner.invoke(
        main, ["extract", str(result.export_dir), "--data", str(photos), "--out", str(out),
               "--projector", str(tmp_path / "projector")],
    )  # fmt: skip
    assert extract.exit_code == 0, extract.output
    assert "has no 'test' split: reading all 48 images." in extract.output
    assert np.load(out).shape == (48, 64)
    assert "Embedding projector: all 48 images" in extract.output
    meta = (tmp_path / "projector" / "metadata.tsv").read_text().splitlines()
    assert len(meta) == 49
    sprite = Image.open(tmp_path / "projector" / "sprite.png")
    assert sprite.size == (7 * 16, 7 * 16)  # the tiny preset's 16-pixel images, 7 x 7
    grid = runner.invoke(
        main, ["eval", "neighbours", str(result.export_dir), "--data", str(photos), "--out",
               str(tmp_path / "grid.png"), "--queries", "2", "--neighbours", "3"],
    )  # fmt: skip
    assert grid.exit_code == 0, grid.output
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    no_out = runner.invoke(main, ["extract", str(result.export_dir), "--data", str(photos)])
    assert (
        no_out.exit_code != 0 and "Give --out FILE.npy, --projector DIR, or both" in no_out.output
    )


@pytest.mark.slow
def test_flat_folder_runs_the_label_free_checks(tmp_path, capsys):
    flat = _write_folder(tmp_path / "flat", classes=1, per_class=40)
    cfg = config.resolve("tiny", values={"data": {"source": str(flat)}}, overrides=OVERRIDES)
    result = runs.fit(cfg, out=tmp_path / "run", verbose=2)
    log = capsys.readouterr().out
    assert f"kNN needs labels: {str(flat)!r} has none" in log
    assert "epoch 1: effective rank" in log
    rows = list(csv.DictReader(open(result.run_dir / "metrics.csv")))
    assert "rankme" in rows[0] and "knn_top1" not in rows[0]
    assert result.knn is None
