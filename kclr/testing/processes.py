"""Real `kclr fit` processes for fault tests and benchmarks: one process, or N workers on loopback.

Example:

```python
from kclr.testing import processes

workers = processes.kclr_fit_workers("--preset", "tiny", "--out", "run", logs=Path("logs"))
codes = [w.wait() for w in workers]
print(processes.read_log(Path("logs"), 0))
```
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

_MAIN = "import sys; from kclr.cli import main; sys.exit(main())"


def _env(**extra: str) -> dict[str, str]:
    """This environment on the CPU, TensorFlow's info and warnings off."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", **extra}
    if "TF_CONFIG" not in extra:
        env.pop("TF_CONFIG", None)
    return env


def free_ports(count: int) -> list[int]:
    """`count` TCP ports of 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def kclr_fit(*args: str, preexec_fn=None) -> subprocess.Popen:
    """`kclr fit ARGS` in a new Python process (CPU only), stdout and stderr together (text)."""
    return subprocess.Popen(
        [sys.executable, "-c", _MAIN, "fit", *args],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=preexec_fn,
    )  # fmt: skip


def kclr_fit_workers(*args: str, logs: pathlib.Path, count: int = 2) -> list[subprocess.Popen]:
    """`kclr fit ARGS --strategy multiworker` as `count` workers on loopback (`TF_CONFIG`).

    Worker i writes its output to `logs/worker-i.log` (a file, so that a worker never
    blocks on a full pipe); read it with `read_log(logs, i)`.
    """
    logs.mkdir(parents=True, exist_ok=True)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}
    processes = []
    for index in range(count):
        task = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        with open(logs / f"worker-{index}.log", "w") as out:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-c", _MAIN, "fit", *args, "--strategy", "multiworker"],
                    env=_env(TF_CONFIG=task),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )  # fmt: skip
            )
    return processes


def read_log(logs: pathlib.Path, index: int) -> str:
    """What worker `index` of `kclr_fit_workers` printed so far."""
    return (logs / f"worker-{index}.log").read_text()
