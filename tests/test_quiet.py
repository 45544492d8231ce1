"""A quiet terminal: without `-v`, TensorFlow's start-up log stays off standard error.

The commands run in subprocesses whose environment has no `TF_CPP_MIN_LOG_LEVEL`, as a
user's shell would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from kclr.cli._quiet import is_noise

NOISE = re.compile(r"I0000|cuda|absl::InitializeLog", re.IGNORECASE)


def _kclr(*args, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "kclr.cli", *args], capture_output=True, text=True, env=env,
        cwd=cwd, timeout=600,
    )  # fmt: skip


def _quiet(process) -> str:
    assert process.returncode == 0, process.stdout + process.stderr
    assert not NOISE.search(process.stderr), process.stderr
    return process.stdout


def test_is_noise():
    assert is_noise("WARNING: All log messages before absl::InitializeLog() is called are written")
    assert is_noise("I0000 00:00:1796578689.323343    5824 port.cc:153] oneDNN custom operations")
    assert is_noise("W0000 00:00:1796578689.3 5824 cudart_stub.cc:31] Could not find cuda drivers")
    assert is_noise(
        "E0000 00:00:1796578961.610305 10704 cuda_platform.cc:52] failed call to cuInit"
    )
    assert not is_noise("E0000 00:00:1796578961.610305 10704 op_kernel.cc:1] OOM when allocating")
    assert not is_noise("F1206 17:46:58.000001 10704 check.cc:1] Check failed: x")
    assert not is_noise("Error: Unknown model 'x'.")


def test_plugins_list_and_an_error_are_quiet_and_v_shows_the_log():
    assert "NAME" in _quiet(_kclr("plugins", "list"))
    missing = _kclr("eval", "knn", "no-such-model", "--data", "demo")
    assert missing.returncode == 1
    assert "Error: Unknown model 'no-such-model'" in missing.stderr  # a real error stays
    assert not NOISE.search(missing.stderr), missing.stderr
    verbose = _kclr("-v", "plugins", "list")
    assert verbose.returncode == 0
    assert re.search(r"I0000|absl::InitializeLog", verbose.stderr), verbose.stderr


@pytest.mark.slow
def test_fit_eval_export_are_quiet(tmp_path):
    run = tmp_path / "run"
    out = _quiet(
        _kclr("fit", "--preset", "tiny", "--out", str(run), "-q", "--set", "train.steps=2",
              "--set", "eval.health_examples=16")
    )  # fmt: skip
    assert "epoch 1/1" in out and "effective rank" in out
    export = str(run / "export")
    assert "knn" in _quiet(_kclr("eval", "knn", export, "--data", "demo", "--no-write"))
    keras_file = tmp_path / "encoder.keras"
    _quiet(_kclr("export", export, "--format", "keras", "--out", str(keras_file), "--no-check"))
    assert keras_file.stat().st_size > 0
