"""Bad image files of a training folder (or rows of an `hf:` dataset): counted, named, and a
limit on their fraction.

A folder source is scanned once when it is resolved (`probe_image_file`: the format
signature and, for JPEG and PNG, the end marker, which catches empty, truncated and
non-image files). The files that fail are left out of the epoch (the example count
and the steps per epoch are computed without them) and listed in `source.skipped`.
`report` summarises them for the run log and `results.json`; `check_fraction` stops
a run when more than `data.max_bad_fraction` of the files are bad.

Example:

```python
from kclr import data
from kclr.data import bad_files

source = data.resolve_source("photos/")
summary = bad_files.check_fraction(source, max_fraction=0.01)
summary["count"], summary["examples"]
```
"""

from __future__ import annotations

from typing import Any

__all__ = ["SHOWN", "TooManyBadFilesError", "check_fraction", "describe", "report"]

SHOWN = 5  # bad files named in the log and in results.json


class TooManyBadFilesError(ValueError):
    """More of a source's files are unreadable than `data.max_bad_fraction` allows."""


def report(source: Any) -> dict[str, Any]:
    """`{"count", "total", "fraction", "examples": [{"file", "reason"}, ...]}` of a source."""
    skipped = list(getattr(source, "skipped", None) or [])
    total = len(skipped)  # and the kept ones:
    if getattr(source, "kind", None) == "files":
        total += len(source.files)
    elif getattr(source, "kind", None) == "hf":
        total += len(source)
    return {
        "count": len(skipped),
        "total": total,
        "fraction": len(skipped) / total if total else 0.0,
        "examples": [{"file": str(f), "reason": r} for f, r in skipped[:SHOWN]],
    }


def describe(summary: dict[str, Any]) -> str:
    """One line: `3 of 203 image files (1.48%) are unreadable and left out: a (why), ...`."""
    shown = "; ".join(f"{e['file']} ({e['reason']})" for e in summary["examples"])
    more = summary["count"] - len(summary["examples"])
    return (
        f"{summary['count']} of {summary['total']} image files ({summary['fraction']:.2%}) are "
        f"unreadable and left out: {shown}" + (f" and {more} more" if more > 0 else "") + "."
    )


def check_fraction(source: Any, max_fraction: float, where: str = "data.source") -> dict:
    """`report(source)`; raises `TooManyBadFilesError` above `max_fraction` of the files."""
    summary = report(source)
    if summary["count"] and summary["fraction"] > max_fraction:
        raise TooManyBadFilesError(
            f"Too many unreadable images in {where} {getattr(source, 'name', source)!r}: "
            f"{describe(summary)} The limit is `data.max_bad_fraction={max_fraction}`. Repair or "
            "remove the files, or raise the limit with `--set data.max_bad_fraction=...`."
        )
    return summary
