"""One ContrastiveTrainer step through MultiWorkerMirroredStrategy (2 processes on loopback)
equals one single-device step on the same global batch."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from kclr_tiny import (  # noqa: E402
    compile_trainer,
    dataset,
    tiny_data,
    tiny_trainer,
    weights_by_path,
)

WORKER = HERE / "kclr_multiworker_worker.py"
TIMEOUT_S = 120


def _free_ports(count):
    sockets = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _single_device(images, labels, floatx):
    import keras

    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(floatx)
    try:
        trainer = tiny_trainer()
        trainer(images[:1], training=False)
        initial = [np.asarray(w) for w in trainer.get_weights()]
        compile_trainer(trainer)
        history = trainer.fit(dataset(images, labels, len(images)), epochs=1, verbose=0)
        return initial, weights_by_path(trainer), history.history
    finally:
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")


def _run_workers(tmp_path, images, labels, initial, floatx):
    np.savez(
        tmp_path / "inputs.npz",
        images=images,
        labels=labels,
        **{f"w{i}": w for i, w in enumerate(initial)},
    )
    ports = ",".join(str(p) for p in _free_ports(2))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(i), ports, str(tmp_path), floatx],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        for i in range(2)
    ]
    outputs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=TIMEOUT_S)
            outputs.append(out.decode(errors="replace"))
    except subprocess.TimeoutExpired:
        pytest.fail(f"multi-worker step did not finish in {TIMEOUT_S} s")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for i, proc in enumerate(procs):
        log = outputs[i]
        if len(log) > 4000:
            log = log[:6000] + "\n...\n" + log[-1000:]
        assert proc.returncode == 0, f"worker {i} failed:\n{log}"
    return [dict(np.load(tmp_path / f"worker_{i}.npz")) for i in range(2)]


@pytest.mark.parametrize("floatx, rtol", [("float64", 1e-10)])
def test_multiworker_step_equals_single_device(tmp_path, floatx, rtol):
    images, labels = tiny_data(batch=8)
    images = images.astype(floatx)
    initial, expected, history = _single_device(images, labels, floatx)
    results = _run_workers(tmp_path, images, labels, initial, floatx)
    for result in results:
        loss = float(result["log:loss"])
        np.testing.assert_allclose(loss, history["loss"][-1], rtol=rtol)
        np.testing.assert_allclose(
            float(result["log:sup_loss"]), history["sup_loss"][-1], rtol=rtol
        )
        for path, value in expected.items():
            got = result[f"weight:{path}"]
            scale = max(np.abs(value).max(), 1e-3)
            assert np.abs(got - value).max() / scale < rtol, path
    # The step did change the weights (so the comparison is not trivial).
    assert any(
        np.abs(expected[p] - w).max() > 1e-4 for p, w in zip(expected, initial, strict=True)
    )
