"""Bad files in a large dataset: counted, named, limited by `data.max_bad_fraction`."""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf

from kclr import data
from kclr.data import bad_files
from kclr.run import config
from kclr.run import fit as runs
from kclr.run.plan import plan

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fault_processes import tiny_config  # noqa: E402

GOOD = 200


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> pathlib.Path:
    """200 good JPEGs in two classes, and 3 bad ones: truncated, empty, not an image."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(GOOD):
        (root / f"class{i % 2}").mkdir(exist_ok=True)
        pixels = (rng.random((20, 20, 3)) * 255).astype(np.uint8)
        tf.io.write_file(str(root / f"class{i % 2}/good{i:03d}.jpg"), tf.io.encode_jpeg(pixels))
    whole = (root / "class0/good000.jpg").read_bytes()
    (root / "class0/truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (root / "class1/empty.jpg").write_bytes(b"")
    (root / "class1/notes.jpg").write_bytes(b"not an image\n")
    return root


def test_bad_files_are_counted_and_named(folder):
    with pytest.warns(UserWarning, match="Skipped 3 unreadable"):
        source = data.resolve_source(str(folder))
    summary = bad_files.check_fraction(source, max_fraction=0.02)
    assert summary["count"] == 3 and summary["total"] == GOOD + 3
    assert summary["fraction"] == pytest.approx(3 / 203)
    assert {pathlib.Path(e["file"]).name: e["reason"] for e in summary["examples"]} == {
        "truncated.jpg": "truncated JPEG (no end-of-image marker)",
        "empty.jpg": "empty file",
        "notes.jpg": "not a JPEG, PNG, GIF or BMP image",
    }
    assert data.num_examples(source) == GOOD  # the epoch counts only readable files


def test_more_than_the_limit_stops_the_run_before_it_starts(folder, tmp_path):
    cfg = tiny_config(data__source=str(folder), data__num_examples="null")
    assert cfg.data.max_bad_fraction == 0.01  # the default
    with pytest.warns(UserWarning), pytest.raises(bad_files.TooManyBadFilesError) as caught:
        runs.fit(cfg, out=tmp_path / "run", verbose=0)
    message = str(caught.value)
    assert "3 of 203 image files (1.48%) are unreadable" in message
    assert "truncated.jpg" in message and "`data.max_bad_fraction=0.01`" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_under_the_limit_the_run_reports_them_in_the_log_and_results(folder, tmp_path, capsys):
    cfg = tiny_config(data__source=str(folder), data__num_examples="null",
                      data__max_bad_fraction=0.02, train__steps=1, train__export="false")  # fmt: skip
    with pytest.warns(UserWarning):
        result = runs.fit(cfg, out=tmp_path / "run", verbose=1)
    assert "3 of 203 image files (1.48%) are unreadable and left out" in capsys.readouterr().out
    results = json.loads((result.run_dir / "results.json").read_text())
    assert results["bad_files"]["count"] == 3 and results["bad_files"]["total"] == 203
    assert len(results["bad_files"]["examples"]) == 3
    assert plan(cfg, GOOD).steps_per_epoch == GOOD // cfg.data.global_batch_size


def test_max_bad_fraction_is_checked():
    with pytest.raises(config.ConfigError, match="max_bad_fraction"):
        config.resolve("tiny", overrides=["data.max_bad_fraction=-0.1"])
