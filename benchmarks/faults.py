"""The fault suite as figures: each fault injected into real `kclr fit` processes.

For each fault: how it is injected, whether the run survived it (the promise of
docs/reliability.md held), seconds to detect it, seconds to checkpoint, steps lost
(steps a resumed run must recompute) and checkpoint files lost (must be 0). Prints one
JSON document.

| fault | injected how |
|---|---|
| `preemption_tiny` | SIGTERM to `kclr fit --preset tiny` after its first checkpoint; `--resume`; weights vs an uninterrupted run |
| `preemption_demo` | SIGTERM to `kclr fit --preset demo` once it trains: the grace period it needs |
| `preemption_r50` | the same for ResNet-50 at 224 px, batch 8 (`--r50`; minutes on a CPU) |
| `disk_full` | RLIMIT_FSIZE (`prlimit`) lowered under a checkpoint's size mid-run |
| `corrupt_checkpoint` | the newest checkpoint truncated to half, then `--resume` |
| `second_fit` | `kclr fit --resume` on a run directory held by a live process |
| `stale_lock` | a lock file of a dead pid, then `kclr fit --resume` |
| `bad_files` | 200 good + 3 bad JPEGs (truncated, empty, not an image) |
| `lost_worker_killed` | SIGKILL of worker 1 of 2 (`MultiWorkerMirroredStrategy`, loopback) after its first checkpoint; both restarted with `--resume`; weights vs an uninterrupted 2-worker run |
| `lost_worker_frozen` | SIGSTOP of worker 1 (a frozen host: no connection reset, only missing heartbeats), `train.worker_timeout_seconds` 5 and 30 |
| `lost_leader_frozen` | SIGSTOP of worker 0, the coordination service's leader (timeout 5) |
| `preemption_multiworker` | SIGTERM to worker 1 only: both must stop at the same step (exit 75) |

    python benchmarks/faults.py            # about 11 minutes on 2 CPU cores
    python benchmarks/faults.py --r50      # adds the ResNet-50 grace period (about 1 minute)
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kclr.testing.processes import kclr_fit, kclr_fit_workers, read_log  # noqa: E402

TINY = ["--preset", "tiny", "-q", "--set", "data.num_examples=64", "--set", "eval.monitor=false"]


def wait_for(predicate, process, limit=900.0) -> None:
    deadline = time.time() + limit
    while time.time() < deadline and process.poll() is None and not predicate():
        time.sleep(0.05)


def latest(run_dir: pathlib.Path) -> dict:
    path = run_dir / "checkpoints" / "latest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def bad_checkpoints(run_dir: pathlib.Path) -> int:
    from kclr.trainer import checkpoint_files

    files = (run_dir / "checkpoints").glob("ckpt-*.npz")
    return sum(checkpoint_files.problem(p) is not None for p in files)


def preemption(root, name: str, args: list[str], started: str, compare: bool, delay=0.0):
    """SIGTERM `delay` s after `started` is in the output (or the first checkpoint exists)."""
    run_dir = root / name
    process = kclr_fit(*args, "--out", str(run_dir))
    lines: list[str] = []
    if started == "checkpoint":  # -q prints a line an epoch: the pipe cannot fill meanwhile
        wait_for(lambda: latest(run_dir), process)
    while started != "checkpoint" and process.poll() is None:  # read until training runs
        line = process.stdout.readline()
        lines.append(line)
        if started in line:
            break
    time.sleep(delay)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output = "".join(lines) + process.communicate(timeout=900)[0]
    exited = time.monotonic() - sent
    found = re.search(r"Preempted by SIGTERM: checkpoint of step (\d+) .* ([\d.]+)s after", output)
    row = {
        "fault": name,
        "injected": f"SIGTERM to `kclr fit {' '.join(args[:2])}` while training",
        "exit_code": process.returncode,
        "seconds_to_detect": None,
        "seconds_to_checkpoint": float(found.group(2)) if found else None,
        "seconds_to_exit": round(exited, 2),
        "steps_lost": None,
        "files_lost": bad_checkpoints(run_dir),
    }
    step = int(found.group(1)) if found else None
    row["steps_lost"] = None if step is None else step - latest(run_dir).get("step", 0)
    row["survived"] = process.returncode == 75 and row["steps_lost"] == 0
    if compare and row["survived"]:
        row["weights_equal_uninterrupted"] = resumed_equals_uninterrupted(root, run_dir, args)
        row["survived"] = row["weights_equal_uninterrupted"]
    return row


def resumed_equals_uninterrupted(root, run_dir, args) -> bool:
    import numpy as np

    import kclr

    for out, extra in ((run_dir, ["--resume"]), (root / "uninterrupted", [])):
        process = kclr_fit(*args, "--out", str(out), *extra)
        output = process.communicate(timeout=900)[0]
        if process.returncode != 0:
            raise RuntimeError(output)
    a = kclr.zoo.load(str(run_dir / "export")).get_weights()
    b = kclr.zoo.load(str(root / "uninterrupted" / "export")).get_weights()
    return all(np.allclose(x, y, rtol=1e-4, atol=1e-5) for x, y in zip(a, b, strict=True))


def disk_full(root: pathlib.Path) -> dict:
    run_dir = root / "disk_full"
    ignore = lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # noqa: E731
    args = [*TINY, "--set", "train.steps=3000", "--set", "train.checkpoint_every_steps=4"]
    process = kclr_fit(*args, "--out", str(run_dir), preexec_fn=ignore)
    wait_for(lambda: latest(run_dir), process)
    size = next((run_dir / "checkpoints").glob("ckpt-*.npz")).stat().st_size
    limited = time.monotonic()
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (size // 2, size // 2))
    output = process.communicate(timeout=900)[0]
    detected = time.monotonic() - limited
    error = next((x for x in output.splitlines() if "Could not write checkpoint" in x), "")
    tmp = [p for p in (run_dir / "checkpoints").iterdir() if ".tmp" in p.name]
    files_lost = bad_checkpoints(run_dir) + len(tmp)
    return {
        "fault": "disk_full",
        "injected": "RLIMIT_FSIZE lowered to half a checkpoint mid-run (prlimit)",
        "survived": process.returncode == 1 and "free there" in error and files_lost == 0,
        "exit_code": process.returncode,
        "seconds_to_detect": round(detected, 2),
        "seconds_to_checkpoint": None,
        "steps_lost": None,  # the steps since the last checkpoint (at most checkpoint_every_steps)
        "files_lost": files_lost,
        "message": error.removeprefix("Error: ")[:160],
    }


def corrupt_checkpoint(root: pathlib.Path) -> dict:
    run_dir = root / "corrupt"
    args = [*TINY, "--set", "train.steps=10", "--set", "train.checkpoint_every_steps=5"]
    first = kclr_fit(*args, "--out", str(run_dir))
    first.communicate(timeout=900)
    newest = run_dir / "checkpoints" / latest(run_dir)["file"]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    started = time.monotonic()
    resumed = kclr_fit(*args, "--out", str(run_dir), "--resume")
    output = resumed.communicate(timeout=900)[0]
    note = next((x for x in output.splitlines() if "is corrupt" in x), "")
    found = re.search(r"\(step (\d+)\)", note)
    return {
        "fault": "corrupt_checkpoint",
        "injected": "newest checkpoint truncated to half its size, then --resume",
        "survived": resumed.returncode == 0 and bool(note) and latest(run_dir)["step"] == 10,
        "exit_code": resumed.returncode,
        "seconds_to_detect": round(time.monotonic() - started, 2),  # the whole resumed run
        "seconds_to_checkpoint": None,
        "steps_lost": 10 - int(found.group(1)) if found else None,
        "files_lost": bad_checkpoints(run_dir),
        "message": note[:160],
    }


def locks(root: pathlib.Path) -> list[dict]:
    rows = []
    for name, pid_of in (("second_fit", "live"), ("stale_lock", "dead")):
        run_dir = root / name
        first = kclr_fit(*TINY, "--set", "train.steps=1", "--out", str(run_dir))
        first.communicate(timeout=900)
        owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        if pid_of == "dead":
            owner.kill()
            owner.wait()
        lock = {"host": socket.gethostname(), "pid": owner.pid, "started": "earlier"}
        (run_dir / ".lock").write_text(json.dumps(lock))
        started = time.monotonic()
        second = kclr_fit(*TINY, "--set", "train.steps=1", "--out", str(run_dir), "--resume")
        output = second.communicate(timeout=900)[0]
        seconds = time.monotonic() - started
        owner.kill()
        owner.wait()
        said = "is in use by another" if pid_of == "live" else "Took over the stale lock"
        line = next((x for x in output.splitlines() if said in x), "")
        rows.append({
            "fault": name,
            "injected": f"--resume on a run directory locked by a {pid_of} pid of this host",
            "survived": bool(line) and second.returncode == (1 if pid_of == "live" else 0),
            "exit_code": second.returncode,
            "seconds_to_detect": round(seconds, 2),  # process start included
            "seconds_to_checkpoint": None,
            "steps_lost": 0,
            "files_lost": bad_checkpoints(run_dir),
            "message": line.removeprefix("Error: ")[:160],
        })  # fmt: skip
    return rows


def bad_files(root: pathlib.Path) -> dict:
    import numpy as np
    import tensorflow as tf

    folder = root / "images"
    rng = np.random.default_rng(0)
    for i in range(200):
        (folder / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        pixels = (rng.random((20, 20, 3)) * 255).astype(np.uint8)
        tf.io.write_file(str(folder / f"class{i % 2}/good{i:03d}.jpg"), tf.io.encode_jpeg(pixels))
    whole = (folder / "class0/good000.jpg").read_bytes()
    (folder / "class0/truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "class1/empty.jpg").write_bytes(b"")
    (folder / "class1/notes.jpg").write_bytes(b"not an image\n")
    args = ["--preset", "tiny", "-q", "--data", str(folder), "--set", "eval.monitor=false"]
    started = time.monotonic()
    stopped = kclr_fit(*args, "--out", str(root / "bad_stopped"))
    output = stopped.communicate(timeout=900)[0]
    seconds = time.monotonic() - started
    allowed = kclr_fit(*args, "--set", "data.max_bad_fraction=0.02", "--out", str(root / "bad"))
    allowed.communicate(timeout=900)
    results = json.loads((root / "bad" / "results.json").read_text())
    line = next((x for x in output.splitlines() if "unreadable" in x and "Error" in x), "")
    return {
        "fault": "bad_files",
        "injected": "3 bad of 203 JPEGs (truncated, empty, not an image)",
        "survived": stopped.returncode == 1 and results["bad_files"]["count"] == 3,
        "exit_code": stopped.returncode,
        "seconds_to_detect": round(seconds, 2),  # process start included
        "seconds_to_checkpoint": None,
        "steps_lost": 0,
        "files_lost": 0,
        "bad_counted": results["bad_files"]["count"],
        "message": line.removeprefix("Error: ")[:160],
    }


WORKERS = [*TINY, "--set", "train.steps=60", "--set", "train.checkpoint_every_steps=5"]


def two_workers(root, name, timeout_s, extra=()):
    """Starts 2 workers of the tiny run; returns them once the first checkpoint exists."""
    run_dir = root / name
    args = [*WORKERS, "--set", f"train.worker_timeout_seconds={timeout_s}", *extra]
    workers = kclr_fit_workers(*args, "--out", str(run_dir), logs=root / f"{name}-logs")
    wait_for(lambda: latest(run_dir), workers[0])
    return run_dir, args, workers


def lost_worker(root, name: str, victim: int, signum, timeout_s: float, compare=None) -> dict:
    run_dir, args, workers = two_workers(root, name, timeout_s)
    survivor = 1 - victim
    workers[victim].send_signal(signum)
    sent = time.monotonic()
    try:
        code = workers[survivor].wait(timeout=600)
    finally:
        for worker in workers:
            worker.kill()
    seconds = time.monotonic() - sent
    output = read_log(root / f"{name}-logs", survivor)
    line = next((x for x in output.splitlines() if x.startswith("Error: Lost worker")), "")
    named = f"/job:worker/replica:0/task:{victim}" in line
    saved = latest(run_dir).get("step")
    row = {
        "fault": name,
        "injected": f"{signal.Signals(signum).name} of worker {victim} of 2, "
        f"train.worker_timeout_seconds={timeout_s}",
        "survived": code == 69 and named,
        "exit_code": code,
        "seconds_to_detect": round(seconds, 2),  # from the signal to the survivor's exit
        "seconds_to_checkpoint": None,
        "steps_lost": None,  # the steps since the last periodic checkpoint
        "files_lost": bad_checkpoints(run_dir),
        "lost_task_named": named,
        "checkpoint_step": saved,
        "message": line.removeprefix("Error: ")[:200],
    }
    if compare is not None and row["survived"]:
        resumed = kclr_fit_workers(*args, "--out", str(run_dir), "--resume",
                                   logs=root / f"{name}-resumed")  # fmt: skip
        codes = [w.wait(timeout=900) for w in resumed]
        row["resumed_exit_codes"] = codes
        row["weights_equal_uninterrupted"] = codes == [0, 0] and weights_equal(
            run_dir, compare(args)
        )
        row["survived"] = row["weights_equal_uninterrupted"]
    return row


def uninterrupted_workers(root):
    """The uninterrupted 2-worker run of `args`, run once, as a function of its args."""
    done = {}

    def run(args):
        key = tuple(args)
        if key not in done:
            out = root / f"uninterrupted-workers-{len(done)}"
            workers = kclr_fit_workers(*args, "--out", str(out), logs=root / f"{out.name}-logs")
            codes = [w.wait(timeout=900) for w in workers]
            if codes != [0, 0]:
                raise RuntimeError(read_log(root / f"{out.name}-logs", 0))
            done[key] = out
        return done[key]

    return run


def weights_equal(a_dir, b_dir) -> bool:
    import numpy as np

    import kclr

    a = kclr.zoo.load(str(a_dir / "export")).get_weights()
    b = kclr.zoo.load(str(b_dir / "export")).get_weights()
    return all(np.allclose(x, y, rtol=1e-4, atol=1e-5) for x, y in zip(a, b, strict=True))


def preemption_multiworker(root) -> dict:
    run_dir, args, workers = two_workers(root, "preemption_multiworker", 30)
    workers[1].send_signal(signal.SIGTERM)
    sent = time.monotonic()
    codes = [w.wait(timeout=600) for w in workers]
    seconds = time.monotonic() - sent
    outputs = [read_log(root / "preemption_multiworker-logs", i) for i in range(2)]
    steps, waits = [], []
    for output in outputs:
        found = re.search(r"checkpoint of step (\d+) .* ([\d.]+)s after", output)
        steps.append(int(found.group(1)) if found else None)
        waits.append(float(found.group(2)) if found else None)
    return {
        "fault": "preemption_multiworker",
        "injected": "SIGTERM to worker 1 of 2 only",
        "survived": codes == [75, 75] and steps[0] == steps[1] == latest(run_dir).get("step"),
        "exit_code": codes,
        "seconds_to_detect": None,
        "seconds_to_checkpoint": waits[1],  # on the worker that got the signal
        "seconds_to_exit": round(seconds, 2),
        "steps_lost": 0 if steps[0] == latest(run_dir).get("step") else None,
        "files_lost": bad_checkpoints(run_dir),
        "stopped_at_steps": steps,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--r50", action="store_true", help="also ResNet-50 at 224 px on CPU")
    options = parser.parse_args(argv)
    root = pathlib.Path(tempfile.mkdtemp(prefix="kclr-faults-"))
    tiny = [*TINY, "--set", "train.steps=400", "--set", "train.checkpoint_every_steps=20"]
    rows = [preemption(root, "preemption_tiny", tiny, "checkpoint", compare=True)]
    # The grace period mid-run: the signal once the first checkpoint is on disk.
    demo = ["--preset", "demo", "-q", "--set", "eval.monitor=false", "--set", "train.steps=200",
            "--set", "train.checkpoint_every_steps=10"]  # fmt: skip
    rows.append(preemption(root, "preemption_demo", demo, "checkpoint", False))
    if options.r50:
        r50 = ["--preset", "simclr_r50", "-q", "--data", "demo", "--set", "eval.monitor=false",
               "--set", "data.global_batch_size=8", "--set", "train.steps=40",
               "--set", "train.checkpoint_every_steps=2"]  # fmt: skip
        rows.append(preemption(root, "preemption_r50", r50, "checkpoint", False))
    rows += [disk_full(root), corrupt_checkpoint(root), *locks(root), bad_files(root)]
    compare = uninterrupted_workers(root)
    rows += [
        lost_worker(root, "lost_worker_killed", 1, signal.SIGKILL, 5, compare),
        lost_worker(root, "lost_worker_frozen", 1, signal.SIGSTOP, 5),
        lost_worker(root, "lost_worker_frozen_30s", 1, signal.SIGSTOP, 30),
        lost_worker(root, "lost_leader_frozen", 0, signal.SIGSTOP, 5),
        preemption_multiworker(root),
    ]
    print(json.dumps({"faults": rows}, indent=1))
    return 0 if all(r["survived"] in (True, None) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
