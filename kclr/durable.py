"""Writing files so that a killed process never leaves a half-written one.

`atomic_write(path, data)` writes through a temporary file beside `path`, fsyncs it and
renames it over `path` (`os.replace`, atomic on POSIX): a reader sees the old or the new
content, never a mix. A leaf: it imports nothing of kclr, so every layer may use it.

Example:

```python
from kclr.durable import atomic_write

atomic_write("run/results.json", b'{"top1": 71.7}\\n')
```
"""

from __future__ import annotations

import os
import pathlib


def atomic_write(path: str | os.PathLike, data: bytes) -> pathlib.Path:
    """Writes `data` to `path` through a temporary file and `os.replace` (atomic on POSIX)."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path
