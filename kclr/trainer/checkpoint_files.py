"""Checkpoint files that cannot be lost: checksummed writes, verified reads, a clear disk-full error.

`write_checkpoint` writes `ckpt-STEP.npz` atomically (temporary file, fsync, rename;
a failed write removes its temporary file and leaves every earlier file as it was),
then its SHA-256 in `ckpt-STEP.npz.sha256`, also atomically. `newest_good` picks the
checkpoint to resume from: the one `latest.json` names when its checksum matches, else
the newest older one that verifies, with a one-line note naming the bad file.

Example:

```python
from kclr.trainer import checkpoint_files

checkpoint_files.write_checkpoint("run/checkpoints", "ckpt-000000100.npz", data)
info, note = checkpoint_files.newest_good("run/checkpoints", {"file": "ckpt-000000100.npz"})
```
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import shutil
import zipfile
from typing import Any

from kclr.durable import atomic_write

__all__ = [
    "CheckpointError",
    "CheckpointWriteError",
    "checksum_path",
    "newest_good",
    "problem",
    "write_checkpoint",
]

_NAME = re.compile(r"^ckpt-(\d+)\.npz$")


class CheckpointError(ValueError):
    """A run's checkpoints cannot be restored or written as asked."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (disk full, file size limit, permissions)."""


def checksum_path(path: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    return path.with_name(path.name + ".sha256")


def _free(directory: pathlib.Path) -> str:
    try:
        return f"{shutil.disk_usage(directory).free / 2**20:.1f} MiB"
    except OSError:
        return "an unknown amount of"


def write_checkpoint(directory: str | os.PathLike, name: str, data: bytes) -> pathlib.Path:
    """Writes `data` as `directory/name` and its checksum; raises `CheckpointWriteError`."""
    directory = pathlib.Path(directory)
    path = directory / name
    try:
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)  # a failed write removes its temporary file
        digest = hashlib.sha256(data).hexdigest()
        atomic_write(checksum_path(path), f"{digest}  {name}\n".encode())
    except OSError as error:
        path.unlink(missing_ok=True)
        raise CheckpointWriteError(
            f"Could not write checkpoint {name} ({len(data) / 2**20:.1f} MiB) to {directory}: "
            f"{error.strerror or error}; {_free(directory)} free there. The earlier "
            "checkpoints are intact: free space (or raise the file size limit), then "
            "continue with `kclr fit ... --resume`."
        ) from error
    return path


def problem(path: str | os.PathLike) -> str | None:
    """Why the checkpoint at `path` cannot be trusted, or None when it verifies.

    With a checksum file: the SHA-256 must match. Without (written before checksums
    were recorded): the archive's own CRCs must match.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return "missing"
    sidecar = checksum_path(path)
    if sidecar.exists():
        expected = sidecar.read_text().split()[0] if sidecar.read_text().strip() else ""
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return None if digest == expected else "its SHA-256 does not match the one recorded"
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        return f"not a readable archive ({error})"
    return None if bad is None else f"member {bad} is corrupt"


def _step_of(name: str) -> int | None:
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


def newest_good(directory: str | os.PathLike, info: dict[str, Any]) -> tuple[dict, str | None]:
    """The checkpoint to restore: `info` (from `latest.json`) if it verifies, else an older one.

    Returns `(info, note)`; `note` is a one-line message when a bad checkpoint was
    passed over. Raises `CheckpointError` when no checkpoint verifies.
    """
    directory = pathlib.Path(directory)
    reason = problem(directory / info["file"])
    if reason is None:
        return info, None
    named = _step_of(info["file"])
    older = sorted(
        (step, p.name)
        for p in directory.glob("ckpt-*.npz")
        if (step := _step_of(p.name)) is not None and (named is None or step < named)
    )
    for step, name in reversed(older):
        if problem(directory / name) is None:
            note = (
                f"Checkpoint {directory / info['file']} is corrupt ({reason}); resuming from the "
                f"previous good one, {name} (step {step})."
            )
            return {"file": name, "step": step, "epoch": None}, note
    raise CheckpointError(
        f"Checkpoint {directory / info['file']} is corrupt ({reason}) and no older checkpoint "
        f"in {directory} verifies. Start a new run directory."
    )
