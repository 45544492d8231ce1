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


def _single_device(images, labels, floatx, learning_rate):
    import keras

    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(floatx)
    try:
        trainer = tiny_trainer()
        trainer(images[:1], training=False)
        initial = [np.asarray(w) for w in trainer.get_weights()]
        compile_trainer(trainer, learning_rate=learning_rate)
        history = trainer.fit(dataset(images, labels, len(images)), epochs=1, verbose=0)
        return initial, weights_by_path(trainer), history.history
    finally:
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")


def _run_workers(tmp_path, images, labels, initial, floatx, learning_rate):
    np.savez(
        tmp_path / "inputs.npz",
        images=images,
        labels=labels,
        learning_rate=learning_rate,
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


# float64 shows the maths is exact; float32 uses the tolerances of the mirrored
# test (reduction order + synchronized-BN variance amplify rounding in BN parameters).
@pytest.mark.parametrize(
    "floatx, learning_rate",
    [("float64", 0.5), pytest.param("float32", 0.05, marks=pytest.mark.slow)],
)
def test_multiworker_step_equals_single_device(tmp_path, floatx, learning_rate):
    images, labels = tiny_data(batch=8)
    images = images.astype(floatx)
    initial, expected, history = _single_device(images, labels, floatx, learning_rate)
    results = _run_workers(tmp_path, images, labels, initial, floatx, learning_rate)
    loss_rtol = 1e-10 if floatx == "float64" else 1e-5
    for result in results:
        for key in ("loss", "sup_loss", "contrast_entropy"):
            np.testing.assert_allclose(
                float(np.asarray(result[f"log:{key}"]).reshape(-1)[0]),
                history[key][-1],
                rtol=loss_rtol,
                err_msg=key,
            )
        for path, value in expected.items():
            got = result[f"weight:{path}"]
            if floatx == "float64":
                scale = max(np.abs(value).max(), 1e-3)
                assert np.abs(got - value).max() / scale < 1e-10, path
            else:
                np.testing.assert_allclose(got, value, rtol=1e-4, atol=1e-6, err_msg=path)
    # The step did change the weights (so the comparison is not trivial).
    changed = [np.abs(expected[p] - w).max() > 1e-7 for p, w in zip(expected, initial, strict=True)]
    assert sum(changed) >= len(changed) - 2
