"""Files that survive a crash and a second process: how every writer in kclr writes.

Three tools, used by the run directory, checkpoints, features, neighbour grids,
protocol results, exports, zoo folders, downloads and publishing:

- `atomic_write(path, data)` / `atomic_write_text` / `atomic_writer` (a handle) /
  `atomic_path` (a name, for `keras.Model.save`): the bytes go to a temporary file beside
  `path` (a name of this process and thread), are fsynced, replace `path` with
  `os.replace`, and the folder is fsynced so that the new name survives a power cut. A reader sees the old or the new content, never a mix; a failure mid-write
  removes the temporary file and leaves the old `path` as it was.
- `staged_folder(target)`: a folder built beside `target`, fsynced and moved into its
  place only when complete; an existing `target` is replaced only after that
  (`move_into_place`), and a failure leaves it untouched.
- `lock(path)`: an inter-process lock (`filelock`) for what two processes may write at
  once, e.g. eight workers filling one shared cache.

This module imports nothing from kclr, so every layer may use it.

Example:

```python
from kclr import durable

durable.atomic_write("run/results.json", b"{}\\n")
with durable.lock("cache/zoo/.model.lock"):
    with durable.staged_folder(pathlib.Path("cache/zoo/model")) as staging:
        (staging / "config.json").write_text("{}")
```
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import BinaryIO

__all__ = [
    "LockTimeoutError",
    "atomic_path",
    "atomic_write",
    "atomic_write_text",
    "atomic_writer",
    "fsync_folder",
    "lock",
    "move_into_place",
    "staged_folder",
    "temporary_name",
]


class LockTimeoutError(TimeoutError):
    """Another process held a lock longer than the caller would wait."""


def temporary_name(path: str | os.PathLike) -> pathlib.Path:
    """A hidden name beside `path`, unique to this process and thread (`.NAME.PID-TID.tmp`)."""
    path = pathlib.Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def fsync_folder(folder: str | os.PathLike) -> None:
    """Makes the names in `folder` durable (a no-op where folders cannot be opened, Windows)."""
    if sys.platform == "win32":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces `path` when the block ends without error.

    For writers that stream (`numpy.save(handle, array)`, a download). If the block
    raises, the temporary file is removed and `path` keeps its old content.
    """
    path = pathlib.Path(path)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[pathlib.Path]:
    """A temporary path (same suffix) that replaces `path` when the block ends without error.

    For writers that take a file name rather than a handle (`keras.Model.save`, h5py). If
    the block raises, the temporary file is removed and `path` keeps its old content.
    """
    path = pathlib.Path(path)
    tmp = temporary_name(path)
    tmp = tmp.with_name(tmp.name + path.suffix)
    try:
        yield tmp
        move_into_place(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: bytes) -> pathlib.Path:
    """Writes `data` to `path` through a temporary file, fsync and `os.replace`."""
    path = pathlib.Path(path)
    with atomic_writer(path) as handle:
        handle.write(data)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> pathlib.Path:
    """`atomic_write` of `text` encoded with `encoding`."""
    return atomic_write(path, text.encode(encoding))


def _fsync_tree(root: pathlib.Path) -> None:
    if root.is_file():
        with open(root, "rb") as handle:
            os.fsync(handle.fileno())
        return
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_folder(folder)


def move_into_place(staged: str | os.PathLike, target: str | os.PathLike) -> pathlib.Path:
    """Moves a complete file or folder `staged` to `target` (same file system), durably.

    A file replaces `target` atomically (`os.replace`). A folder cannot replace a folder
    in one step, so an existing `target` is first renamed to a hidden backup beside it,
    `staged` takes its name, and only then is the backup removed: `target` is never a
    mix of old and new files, and the old one is gone only once the new one is in place.
    """
    staged, target = pathlib.Path(staged), pathlib.Path(target)
    _fsync_tree(staged)
    if staged.is_dir() and target.exists():
        backup = temporary_name(target).with_suffix(".old")
        target.rename(backup)
        try:
            staged.rename(target)
        except BaseException:
            backup.rename(target)
            raise
        shutil.rmtree(backup) if backup.is_dir() else backup.unlink()
    else:
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(staged, target)
    fsync_folder(target.parent)
    return target


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike) -> Iterator[pathlib.Path]:
    """A temporary folder beside `target`, moved into its place when the block ends.

    If the block raises, the temporary folder is removed and `target` is untouched; an
    existing `target` is replaced only once the new folder is complete (`move_into_place`).
    """
    target = pathlib.Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        move_into_place(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


@contextlib.contextmanager
def lock(
    path: str | os.PathLike,
    timeout: float | None = None,
    waiting: Callable[[], None] | None = None,
) -> Iterator[pathlib.Path]:
    """Holds the inter-process lock file `path` for the block (its folder is created).

    Args:
        path: the lock file (conventionally `<what it guards>.lock`); it stays on disk.
        timeout: seconds to wait at most (None: as long as it takes).
        waiting: called once when another process holds the lock (e.g. to say so).

    Raises:
        LockTimeoutError: naming the lock file, when `timeout` passed.

    A lock held by a process that died is free again: the operating system drops it.
    """
    import filelock

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    held = filelock.FileLock(os.fspath(path))
    try:
        held.acquire(timeout=0)
    except filelock.Timeout:
        if waiting is not None:
            waiting()
        try:
            held.acquire(timeout=-1 if timeout is None else timeout)
        except filelock.Timeout as error:
            raise LockTimeoutError(
                f"Another process held {os.fspath(path)!r} for more than {timeout} s. Wait for "
                "it to finish, or stop it; a lock of a process that has ended is freed "
                "by itself."
            ) from error
    try:
        yield path
    finally:
        held.release()
