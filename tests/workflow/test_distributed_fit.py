"""Distributed `fit`: MirroredStrategy on 2 logical CPUs (fast) and 2 workers on loopback (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kclr.run import config
from kclr.run import fit as runs
from kclr.testing.processes import free_ports


@pytest.mark.slow  # ~30-60 s on 2 shared cores (MirroredStrategy tracing)
def test_mirrored_fit_on_two_logical_cpus(tmp_path):
    import tensorflow as tf

    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) < 2:
        pytest.skip("needs the 2 logical CPU devices set up by tests/conftest.py")
    strategy = tf.distribute.MirroredStrategy([d.name for d in cpus[:2]])
    cfg = config.resolve("tiny", overrides=["eval.monitor=false", "train.export=false"])
    result = runs.fit(cfg, out=tmp_path / "run", verbose=0, strategy=strategy)
    assert result.steps == 2 and strategy.num_replicas_in_sync == 2
    assert np.isfinite(result.history[-1]["loss"])
    assert (tmp_path / "run" / "checkpoints" / "ckpt-000000002.npz").exists()


def test_batch_that_does_not_divide_across_replicas_is_refused(tmp_path):
    import tensorflow as tf

    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) < 2:
        pytest.skip("needs 2 logical CPU devices")
    strategy = tf.distribute.MirroredStrategy([d.name for d in cpus[:2]])
    cfg = config.resolve("tiny", overrides=["data.global_batch_size=7"])
    with pytest.raises(ValueError, match="7"):
        runs.fit(cfg, out=tmp_path / "run", verbose=0, strategy=strategy)
    assert not (tmp_path / "run").exists()  # refused before the run directory is created


@pytest.mark.slow
def test_two_workers_on_loopback_with_tf_config(tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    code = "import sys; from kclr.cli import main; sys.exit(main())"
    args = [
        "fit", "--preset", "tiny", "-q", "--strategy", "multiworker", "--out", str(tmp_path / "run"),
        "--set", "eval.monitor=false", "--set", "train.steps=3",
    ]  # fmt: skip
    processes = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": "",
        }
        processes.append(
            subprocess.Popen([sys.executable, "-c", code, *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        )  # fmt: skip
    outputs = [p.communicate(timeout=400)[0] for p in processes]
    for p, out in zip(processes, outputs, strict=True):
        assert p.returncode == 0, out
    assert "2 replica(s)" in outputs[0]
    latest = json.loads((tmp_path / "run" / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == 3
    assert (tmp_path / "run" / "export" / "model.weights.h5").exists()
