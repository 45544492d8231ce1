"""All of a report's files or none: written in a hidden folder, then moved into place.

`staged(out)` yields a temporary folder inside `out`; when the block ends without an
error, each file in it is moved over its namesake in `out` (`kclr.durable.move_into_place`:
fsync, then an atomic rename), and the temporary folder is removed. On an error nothing in `out`
changes. A crash between two renames can leave one file of the new report beside one
of an older one, never a truncated file.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import tempfile
from collections.abc import Iterator

from kclr.durable import move_into_place


@contextlib.contextmanager
def staged(out: str | os.PathLike) -> Iterator[pathlib.Path]:
    """A temporary folder whose files replace those of the same names in `out` on success."""
    out = pathlib.Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(
            f"--out {str(out)!r} is a file; pass a folder (it is created when missing)."
        )
    out.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=".curate-", dir=out))
    try:
        yield tmp
        for path in sorted(tmp.iterdir()):
            move_into_place(path, out / path.name)  # os.replace, then fsync of `out`
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
