"""One `kclr fit` per run directory: a lock file naming the owner's host and pid.

`acquire(run_dir)` creates `run_dir/.lock` (`{"host", "pid", "started"}`) with an
exclusive create. A lock held by a live process is refused with an error naming it; a
lock left by a dead process of this host (a SIGKILL, an out-of-memory kill) is taken
over with a one-line message. A lock of another host cannot be checked from here and
is refused, with the command that removes it. The lock is released by `release()`
and, if the process ends without it, at interpreter exit.

Example:

```python
from kclr.run import lock as run_lock

lock = run_lock.acquire("runs/demo")
...
lock.release()
```
"""

from __future__ import annotations

import atexit
import datetime
import json
import os
import pathlib
import socket

from kclr.run.rundir import LOCK_FILE, RunDirectoryError

__all__ = ["LOCK_FILE", "RunDirectoryInUseError", "RunLock", "acquire"]


class RunDirectoryInUseError(RunDirectoryError):
    """Another live `kclr fit` holds the run directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class RunLock:
    """The lock file of one run directory, held by this process."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.held = False

    def release(self) -> None:
        if not self.held:
            return
        try:
            owner = json.loads(self.path.read_text())
            if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
                self.path.unlink()
        except (OSError, ValueError):
            pass
        self.held = False


def _create(path: pathlib.Path) -> bool:
    owner = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        json.dump(owner, handle)
    return True


def acquire(run_dir: str | os.PathLike, echo=print) -> RunLock:
    """Takes the lock of `run_dir` (created if needed); raises `RunDirectoryInUseError`."""
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir / LOCK_FILE)
    for _ in range(3):  # a lost race with another process taking over: look again
        if _create(lock.path):
            lock.held = True
            atexit.register(lock.release)
            return lock
        try:
            owner = json.loads(lock.path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            owner = {}
        host, pid = owner.get("host"), owner.get("pid")
        mine = host == socket.gethostname()
        if mine and pid == os.getpid():  # this process (an earlier fit that raised)
            lock.held = True
            return lock
        if mine and isinstance(pid, int) and _alive(pid):
            raise RunDirectoryInUseError(
                f"Run directory {str(run_dir)!r} is in use by another `kclr fit` (pid {pid} on "
                f"host {host}, since {owner.get('started')}). Wait for it to finish, stop it, or "
                "choose another `--out`."
            )
        if not mine and host is not None:
            raise RunDirectoryInUseError(
                f"Run directory {str(run_dir)!r} is locked by pid {pid} on host {host} (since "
                f"{owner.get('started')}), which cannot be checked from {socket.gethostname()}. "
                f"If that run is over, delete {lock.path} and start again."
            )
        echo(
            f"Took over the stale lock {lock.path}: its owner (pid {pid} on host {host}) is "
            "no longer running."
        )
        lock.path.unlink(missing_ok=True)
    raise RunDirectoryInUseError(
        f"Could not take the lock {lock.path}; another process races for it."
    )
