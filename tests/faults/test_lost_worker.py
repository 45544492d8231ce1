"""A lost worker: with 2 workers on loopback, the survivor of a SIGKILL or a SIGSTOP (a frozen
host: no connection reset, only missing heartbeats) exits with `WorkerLostError` naming the lost
task within `train.worker_timeout_seconds` plus TensorFlow's detection delay; both workers
restarted with `--resume` end at the weights of an uninterrupted run. SIGTERM to one worker
stops every worker at the same step."""

from __future__ import annotations

import json
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from kclr.distribute import WORKER_LOST_EXIT_CODE
from kclr.trainer.preemption import PREEMPTED_EXIT_CODE

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fault_processes import TINY, free_ports, kclr_fit_workers, read_log  # noqa: E402

STEPS = 60
ARGS = [*TINY, "--set", f"train.steps={STEPS}", "--set", "train.checkpoint_every_steps=5",
        "--set", "train.worker_timeout_seconds=5", "--set", "train.export=true"]  # fmt: skip


def _wait_for_checkpoint(run_dir: pathlib.Path, processes, limit=300.0) -> int:
    latest = run_dir / "checkpoints" / "latest.json"
    deadline = time.time() + limit
    while time.time() < deadline and not latest.exists():
        assert all(p.poll() is None for p in processes), "a worker ended before its first save"
        time.sleep(0.05)
    return json.loads(latest.read_text())["step"]


def _finish(processes, timeout=300.0) -> list[int]:
    try:
        return [p.wait(timeout=timeout) for p in processes]
    finally:
        for p in processes:
            p.kill()


def _weights(run_dir: pathlib.Path) -> list[np.ndarray]:
    import kclr

    return kclr.zoo.load(str(run_dir / "export")).get_weights()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[np.ndarray]:
    root = tmp_path_factory.mktemp("uninterrupted")
    processes = kclr_fit_workers(*ARGS, "--out", str(root / "run"), logs=root / "logs")
    assert _finish(processes) == [0, 0], read_log(root / "logs", 0) + read_log(root / "logs", 1)
    return _weights(root / "run")


def _resume_both(run_dir, logs) -> None:
    processes = kclr_fit_workers(*ARGS, "--out", str(run_dir), "--resume", logs=logs)
    assert _finish(processes) == [0, 0], read_log(logs, 0) + read_log(logs, 1)
    assert json.loads((run_dir / "checkpoints/latest.json").read_text())["step"] == STEPS


@pytest.mark.slow  # three 2-worker runs, about 2 minutes on 2 cores
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP], ids=["SIGKILL", "SIGSTOP"])
def test_survivor_names_the_lost_worker_and_resume_reaches_uninterrupted_weights(
    tmp_path, uninterrupted, signum
):
    run_dir, logs = tmp_path / "run", tmp_path / "logs"
    processes = kclr_fit_workers(*ARGS, "--out", str(run_dir), logs=logs)
    _wait_for_checkpoint(run_dir, processes)
    processes[1].send_signal(signum)
    sent = time.monotonic()
    try:
        code = processes[0].wait(timeout=120)  # bounded: never a hang in a collective
    finally:
        processes[1].kill()
    seconds = time.monotonic() - sent
    output = read_log(logs, 0)
    assert code == WORKER_LOST_EXIT_CODE, output
    lines = [line for line in output.splitlines() if line.startswith("Error: Lost worker")]
    assert len(lines) == 1, output
    assert "/job:worker/replica:0/task:1" in lines[0] and "--resume" in lines[0]
    step = int(re.search(r"the last checkpoint is step (\d+)", lines[0]).group(1))
    # 5 s heartbeat timeout, then TensorFlow's check and abort (measured: 8 s frozen, 7 s killed)
    assert seconds < 45, (seconds, output)
    assert json.loads((run_dir / "checkpoints/latest.json").read_text())["step"] == step < STEPS
    assert not (run_dir / ".lock").exists()

    _resume_both(run_dir, tmp_path / "resumed")
    for a, b in zip(uninterrupted, _weights(run_dir), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sigterm_to_one_worker_stops_both_at_the_same_step_and_resumes(tmp_path, uninterrupted):
    run_dir, logs = tmp_path / "run", tmp_path / "logs"
    processes = kclr_fit_workers(*ARGS, "--out", str(run_dir), logs=logs)
    _wait_for_checkpoint(run_dir, processes)
    processes[1].send_signal(signal.SIGTERM)  # the notice reaches one worker only
    codes = _finish(processes, timeout=120)
    outputs = [read_log(logs, 0), read_log(logs, 1)]
    assert codes == [PREEMPTED_EXIT_CODE] * 2, outputs
    steps = [int(re.search(r"checkpoint of step (\d+)", out).group(1)) for out in outputs]
    assert steps[0] == steps[1] < STEPS, outputs
    assert json.loads((run_dir / "checkpoints/latest.json").read_text())["step"] == steps[0]

    _resume_both(run_dir, tmp_path / "resumed")
    for a, b in zip(uninterrupted, _weights(run_dir), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_worker_timeout_reaches_the_coordination_service():
    """`train.worker_timeout_seconds` is TensorFlow's heartbeat timeout (a fresh process)."""
    port = free_ports(1)[0]
    code = textwrap.dedent(f"""
        import json, os
        os.environ["TF_CONFIG"] = json.dumps(
            {{"cluster": {{"worker": ["127.0.0.1:{port}"]}}, "task": {{"type": "worker", "index": 0}}}})
        from kclr import distribute
        from kclr.run import config
        from tensorflow.python.eager import context
        cfg = config.resolve("tiny", overrides=["train.worker_timeout_seconds=7.5"])
        distribute.get_strategy("multiworker",
                                worker_timeout_seconds=cfg.train.worker_timeout_seconds)
        service = context.context().coordination_service
        print("heartbeat", service.heartbeat_timeout_in_ms, service.service_leader)
    """)
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env)  # fmt: skip
    assert "heartbeat 7500 /job:worker/replica:0/task:0" in out.stdout, out.stdout + out.stderr


def test_lost_worker_names_the_task_from_tensorflows_error():
    import tensorflow as tf

    from kclr import distribute

    class Strategy:  # the parts of a multi-worker strategy `lost_worker` reads
        class extended:
            _in_multi_worker_mode = staticmethod(lambda: True)

        cluster_resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec({"worker": ["127.0.0.1:1", "127.0.0.1:2"]}),
            task_type="worker", task_id=0,
        )  # fmt: skip

    message = (
        "{{function_node __wrapped__CollectiveReduceV2}} Collective ops is aborted by: Error "
        "reported from /job:worker/task:1: The following tasks are unhealthy (stopped sending "
        "heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed."
    )
    lost = distribute.lost_worker(tf.errors.UnavailableError(None, None, message), Strategy, 25)
    assert lost.tasks == ["/job:worker/replica:0/task:1"] and lost.checkpoint_step == 25
    assert str(lost).startswith(
        "Lost worker /job:worker/replica:0/task:1: UnavailableError: Collective ops is aborted"
    )
    assert "the last checkpoint is step 25" in str(lost) and "exit code 69" in str(lost)
    # not a peer's fault, or a single worker: no WorkerLostError
    assert (
        distribute.lost_worker(tf.errors.InvalidArgumentError(None, None, "shape"), Strategy)
        is None
    )
    assert distribute.lost_worker(tf.errors.UnavailableError(None, None, message), None) is None
    # worker 1 whose heartbeats to the leader time out: the leader is the one lost
    Strategy.cluster_resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        Strategy.cluster_resolver.cluster_spec(), task_type="worker", task_id=1
    )
    lost = distribute.lost_worker(tf.errors.DeadlineExceededError(None, None, "Deadline"), Strategy)
    assert lost.tasks == ["/job:worker/replica:0/task:0"] and "no checkpoint was written" in str(
        lost
    )
