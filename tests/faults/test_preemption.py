"""Preemption notices: SIGTERM / SIGINT save a checkpoint at the next step; --resume ends where an
uninterrupted run ends."""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import sys
import time

import keras
import numpy as np
import pytest

from kclr.run import fit as runs
from kclr.trainer.preemption import PREEMPTED_EXIT_CODE, Preempted

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fault_processes import TINY, kclr_fit, tiny_config  # noqa: E402


class SignalAt(keras.callbacks.Callback):
    """Sends `signum` to this process after optimizer step `step`."""

    def __init__(self, step: int, signum: int) -> None:
        super().__init__()
        self.step, self.signum = step, signum

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            os.kill(os.getpid(), self.signum)


def test_sigterm_saves_the_next_step_and_resume_matches_uninterrupted(tmp_path):
    cfg = tiny_config(train__steps=12, train__checkpoint_every_steps=100)
    with pytest.raises(Preempted, match=r"Preempted by SIGTERM: checkpoint of step 5") as caught:
        runs.fit(cfg, out=tmp_path / "cut", verbose=0, callbacks=[SignalAt(4, signal.SIGTERM)])
    assert caught.value.step == 5 and 0 <= caught.value.seconds < 5
    latest = json.loads((tmp_path / "cut/checkpoints/latest.json").read_text())
    assert latest["step"] == 5
    assert not (tmp_path / "cut/export").exists()
    assert not (tmp_path / "cut/.lock").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored

    resumed = runs.fit(cfg, out=tmp_path / "cut", resume=True, verbose=0)
    full = runs.fit(cfg, out=tmp_path / "full", verbose=0)
    assert resumed.steps == full.steps == 12
    for a, b in zip(full.trainer.get_weights(), resumed.trainer.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sigint_is_a_preemption_notice_too(tmp_path):
    cfg = tiny_config(train__steps=12, train__checkpoint_every_steps=100)
    with pytest.raises(Preempted, match="SIGINT") as caught:
        runs.fit(cfg, out=tmp_path / "run", verbose=0, callbacks=[SignalAt(2, signal.SIGINT)])
    assert caught.value.step == 3
    assert caught.value.checkpoint == tmp_path / "run/checkpoints/ckpt-000000003.npz"
    assert caught.value.checkpoint.exists()


@pytest.mark.slow
def test_cli_sigterm_exits_75_with_one_line_and_resumes_to_uninterrupted_weights(tmp_path):
    import kclr

    args = [*TINY, "--set", "train.steps=400", "--set", "train.checkpoint_every_steps=20"]
    cut, full = tmp_path / "cut", tmp_path / "full"
    process = kclr_fit(*args, "--out", str(cut))
    latest = cut / "checkpoints" / "latest.json"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None and not latest.exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == PREEMPTED_EXIT_CODE, output
    lines = [line for line in output.splitlines() if line.startswith("Preempted by SIGTERM")]
    assert len(lines) == 1, output
    step, seconds = re.search(r"step (\d+) saved .* ([\d.]+)s after", lines[0]).groups()
    assert 8 <= int(step) < 400 and float(seconds) < 5  # the first save is at step 8
    assert json.loads(latest.read_text())["step"] == int(step)

    resumed = kclr_fit(*args, "--out", str(cut), "--resume")
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and f"(step {step})" in output, output
    uninterrupted = kclr_fit(*args, "--out", str(full))
    output, _ = uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0, output
    a = kclr.zoo.load(str(full / "export")).get_weights()
    b = kclr.zoo.load(str(cut / "export")).get_weights()
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
