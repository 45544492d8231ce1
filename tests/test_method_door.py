"""The `kclr.methods` door: a throwaway method from a test distribution runs through `kclr fit`."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from kclr.testing.plugins import write_distribution

METHOD_MODULE = '''
import keras

from kclr.methods import Method
from kclr.trainer.step import plain_step


class CountingSimCLR(Method):
    """SimCLR's step, and a count of the updates it saw (a test method)."""

    reads = {"encoder": "trained", "projection_head": "trained", "loss": "the loss",
             "optimizer": "the optimizer", "schedule": "its rate", "augmentation": "the views"}
    uses_loss = True

    def __init__(self, start: int = 0, name: str = "counting", **kwargs):
        super().__init__(name=name, **kwargs)
        self.start = int(start)
        self.count = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.start), dtype="int32",
            trainable=False, name="count",
        )

    def bind(self, loss):
        self.loss = loss

    def step(self, context, views, labels):
        return plain_step(context, views, labels)

    def after_apply(self, context, outputs, labels):
        self.count.assign_add(1)

    def get_config(self):
        return {"name": self.name, "start": self.start}
'''


def _kclr(site, *args):
    env = {**os.environ, "PYTHONPATH": str(site), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "kclr.cli", *args], capture_output=True, text=True, env=env,
        timeout=600,
    )  # fmt: skip


def test_a_plugin_method_runs_through_kclr_fit(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    write_distribution(
        site, "kclr-counting", {"kclr.methods": {"counting": "kclr_counting:CountingSimCLR"}},
        {"kclr_counting.py": METHOD_MODULE},
    )  # fmt: skip
    listed = _kclr(site, "plugins", "list", "methods")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:] if line}
    assert rows["counting"][1:4] == ["method", "kclr-counting", "0.3.1"]
    assert rows["simclr"][1:3] == ["method", "kclr"]

    out = tmp_path / "run"
    args = ["fit", "--preset", "tiny", "-q", "--set", "eval.monitor=false"]
    result = _kclr(site, *args, "--set", "method.name=counting",
                   "--set", "method.config.start=5", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "does not use" not in result.stdout  # it reads every spec
    latest = sorted((out / "checkpoints").glob("ckpt-*.npz"))[-1]
    state = np.load(latest)
    assert int(state["counting/count"]) == 5 + 2  # the tiny preset's 2 steps, after each update
    assert "method:\n  name: counting" in (out / "config.yaml").read_text()
