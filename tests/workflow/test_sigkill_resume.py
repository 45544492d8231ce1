"""Preemption: SIGKILL a real `kclr fit` process mid-epoch, resume, compare with an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ARGS = [
    "--preset", "tiny", "-q",
    "--set", "train.steps=40", "--set", "train.checkpoint_every_steps=5",
    "--set", "data.num_examples=256", "--set", "eval.monitor=false",
]  # fmt: skip


def _kclr(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    code = "import sys; from kclr.cli import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, "fit", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs,
    )  # fmt: skip


def _weights(export_dir):
    import kclr

    return kclr.zoo.load(str(export_dir)).get_weights()


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    cut, full = tmp_path / "cut", tmp_path / "full"
    process = _kclr(*ARGS, "--out", str(cut))
    checkpoints = cut / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if (checkpoints / "latest.json").exists():
            step = json.loads((checkpoints / "latest.json").read_text())["step"]
            if step >= 5:
                break
        time.sleep(0.05)
    assert process.poll() is None, (
        "the run ended before it could be killed:\n" + process.stdout.read()
    )
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    killed_at = json.loads((checkpoints / "latest.json").read_text())["step"]
    assert 5 <= killed_at < 40 and killed_at % 32 != 0  # mid-epoch (32 steps per epoch)
    assert not (cut / "export").exists()

    resumed = _kclr(*ARGS, "--out", str(cut), "--resume")
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert f"(step {killed_at})" in output
    uninterrupted = _kclr(*ARGS, "--out", str(full))
    output_full, _ = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, output_full

    latest = json.loads((checkpoints / "latest.json").read_text())
    assert latest["step"] == 40
    for a, b in zip(_weights(full / "export"), _weights(cut / "export"), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
