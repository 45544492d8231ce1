"""`kclr zoo list|pull|convert|push` through click's test runner."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from click.testing import CliRunner
from zoo_checkpoints import random_arrays, reference_forward, scale_shapes, write_checkpoint

import kclr
from kclr.cli import main
from kclr.models import ResNet


def test_zoo_help_does_not_import_tensorflow():
    code = (
        "import sys; from click.testing import CliRunner; from kclr.cli import main; "
        "r = CliRunner().invoke(main, ['zoo', '--help']); assert r.exit_code == 0, r.output; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_list():
    result = CliRunner().invoke(main, ["zoo", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "ARCH", "FEATURES", "TOP-1", "PROTOCOL", "SOURCE"]
    assert len(lines) == 1 + 74
    row = next(line for line in lines if line.startswith("simclr-r50-4x "))
    assert row.split()[:6] == [
        "simclr-r50-4x",
        "r50_4x_sk0",
        "8192",
        "76.6",
        "linear",
        "evaluation",
    ]
    row = next(line for line in lines if line.startswith("simclrv2-r101-2x-sk1-ft10 "))
    assert row.split()[:6] == [
        "simclrv2-r101-2x-sk1-ft10",
        "r101_2x_sk1",
        "4096",
        "-",
        "not",
        "reported",
    ]


def test_cache_list_and_clear(zoo_env):
    root = kclr.zoo.cache_dir()
    (root / "zoo" / "simclr-r50-1x").mkdir(parents=True)
    (root / "zoo" / "simclr-r50-1x" / "model.weights.h5").write_bytes(b"x" * 3000)
    (root / "downloads" / "simclr-r50-1x").mkdir(parents=True)
    (root / "downloads" / "simclr-r50-1x" / "model.ckpt-225206.index").write_bytes(b"y" * 10)
    (root / "downloads" / "simclrv2-r50-1x-sk0").mkdir(parents=True)
    (root / "downloads" / "sha256.json").write_text("{}")
    result = CliRunner().invoke(main, ["zoo", "cache", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Cache: {root}"
    assert lines[1].split() == ["model", "simclr-r50-1x", "2.9", "KiB"]
    assert lines[2].split() == ["download", "simclr-r50-1x", "10", "B"]
    assert lines[-1] == "Total: 2.9 KiB in 3 folders"
    result = CliRunner().invoke(main, ["zoo", "cache", "clear", "simclrv2-r50-1x-sk0"])
    assert result.output.splitlines()[0] == "Removed 1 folders (0 B)."
    assert not (root / "downloads" / "simclrv2-r50-1x-sk0").exists()
    result = CliRunner().invoke(main, ["zoo", "cache", "clear"])
    assert result.output.splitlines()[0] == "Removed 2 folders (2.9 KiB)."
    assert (root / "downloads" / "sha256.json").exists()
    CliRunner().invoke(main, ["zoo", "cache", "clear", "--all"])
    assert not (root / "downloads" / "sha256.json").exists()


def test_convert_then_load(tmp_path, r50_tf1_shapes):
    arrays = random_arrays(scale_shapes(r50_tf1_shapes, 0.125), seed=9)
    prefix = write_checkpoint(tmp_path / "model.ckpt-9", arrays)
    out = tmp_path / "converted"
    result = CliRunner().invoke(
        main, ["zoo", "convert", "--from", prefix, "--arch", "r50_0.125x", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "encoder, projection head, supervised head" in result.output
    assert result.output.splitlines()[1] == "Skipped no variables."
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["converted_from"]["variables_assigned"] == 281
    images = np.random.default_rng(3).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(kclr.zoo.load(out)(images)),
        reference_forward(arrays, images),
        rtol=2e-4,
        atol=2e-4,
    )


def test_convert_errors_are_clean(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "zoo",
            "convert",
            "--from",
            str(tmp_path / "nope"),
            "--arch",
            "r50_1x",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1
    assert "Error: Checkpoint" in result.output and "does not exist" in result.output
    result = CliRunner().invoke(
        main, ["zoo", "convert", "--from", ".", "--arch", "resnet50", "--out", str(tmp_path / "o")]
    )
    assert "Unknown architecture code 'resnet50'" in result.output


def test_pull_unknown_and_offline(zoo_env, monkeypatch):
    result = CliRunner().invoke(main, ["zoo", "pull", "simclr-r50-8x"])
    assert result.exit_code == 1 and "Unknown model 'simclr-r50-8x'" in result.output
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(main, ["zoo", "pull", "simclr-r50-1x"])
    assert result.exit_code == 1 and "kclr zoo convert --from" in result.output


def test_push_out_writes_upload_folder(tmp_path):
    kclr.zoo.save(ResNet(18, 0.25, input_shape=(None, None, 3)), tmp_path / "run" / "export")
    result = CliRunner().invoke(
        main,
        ["zoo", "push", str(tmp_path / "run"), "--repo", "me/tiny", "--out", str(tmp_path / "up")],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == [
        "README.md",
        "config.json",
        "metadata.json",
        "model.weights.h5",
    ]


def test_eval_commands_name_an_unknown_model_without_a_traceback(zoo_env):
    for command in ("knn", "linear", "neighbours"):
        args = ["eval", command, "simclr-r50-8x", "--data", "demo"]
        args += ["--out", "grid.png"] if command == "neighbours" else []
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, (command, result.output)
        assert result.output.startswith("Error: Unknown model 'simclr-r50-8x'"), result.output
        assert "Traceback" not in result.output and "KeyError" not in result.output
