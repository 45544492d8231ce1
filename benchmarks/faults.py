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

    python benchmarks/faults.py            # about 3 minutes on 2 CPU cores
    python benchmarks/faults.py --r50      # adds the ResNet-50 grace period
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

TINY = ["--preset", "tiny", "-q", "--set", "data.num_examples=64", "--set", "eval.monitor=false"]


def kclr_fit(*args: str, preexec_fn=None) -> subprocess.Popen:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    code = "import sys; from kclr.cli import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, "fit", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=preexec_fn,
    )  # fmt: skip


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
    while process.poll() is None:  # read until training runs
        line = process.stdout.readline()
        lines.append(line)
        if started in line or (started == "checkpoint" and latest(run_dir)):
            break
    if started == "checkpoint":
        wait_for(lambda: latest(run_dir), process)
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--r50", action="store_true", help="also ResNet-50 at 224 px on CPU")
    options = parser.parse_args(argv)
    root = pathlib.Path(tempfile.mkdtemp(prefix="kclr-faults-"))
    tiny = [*TINY, "--set", "train.steps=400", "--set", "train.checkpoint_every_steps=20"]
    rows = [preemption(root, "preemption_tiny", tiny, "checkpoint", compare=True)]
    demo = ["--preset", "demo", "-q", "--set", "eval.monitor=false", "--set", "train.steps=40"]
    rows.append(preemption(root, "preemption_demo", demo, "Training demo", False, 20.0))
    if options.r50:
        r50 = ["--preset", "simclr_r50", "-q", "--data", "demo", "--set", "eval.monitor=false",
               "--set", "data.global_batch_size=8", "--set", "train.steps=40"]  # fmt: skip
        rows.append(preemption(root, "preemption_r50", r50, "Training simclr_r50", False, 60.0))
    rows += [disk_full(root), corrupt_checkpoint(root), *locks(root), bad_files(root)]
    rows.append({
        "fault": "lost_worker", "injected": "SIGKILL of one of 2 MultiWorkerMirroredStrategy workers",
        "survived": None, "note": "not measured",
    })  # fmt: skip
    print(json.dumps({"faults": rows}, indent=1))
    return 0 if all(r["survived"] in (True, None) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
