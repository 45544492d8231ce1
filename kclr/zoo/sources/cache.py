"""What kclr keeps in its cache (`kclr zoo cache list|clear`).

Layout of `cache_dir()` (also `kclr.zoo.cache_dir()`):

- `zoo/<name>/`: converted models (what `kclr.zoo.load(name)` reads);
- `downloads/<name>/`: the authors' files (kept to re-convert without downloading);
- `downloads/sha256.json`: the sha256 of every downloaded file, recorded on first use.

Hub downloads live in the Hugging Face cache (`huggingface-cli scan-cache`).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil

from kclr.zoo.sources.http import RECORD_FILE, HashRecord

CACHE_ENV = "KCLR_CACHE"


def cache_dir() -> pathlib.Path:
    """kclr's cache: `$KCLR_CACHE`, else `$XDG_CACHE_HOME/kclr`, else `~/.cache/kclr`."""
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "kclr"


def hash_record() -> HashRecord:
    """The record of the sha256 of every file downloaded from the authors' bucket."""
    return HashRecord(cache_dir() / "downloads" / RECORD_FILE)


@dataclasses.dataclass(frozen=True)
class CacheItem:
    kind: str  # "model" | "download"
    name: str
    path: pathlib.Path
    size: int


def _size(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def items(root: pathlib.Path | None = None) -> list[CacheItem]:
    """Every cached model and download folder, with its size in bytes."""
    root = root or cache_dir()
    found = []
    for kind, folder in (("model", root / "zoo"), ("download", root / "downloads")):
        if folder.is_dir():
            for path in sorted(p for p in folder.iterdir() if p.is_dir()):
                found.append(CacheItem(kind, path.name, path, _size(path)))
    return found


def human(size: int) -> str:
    """`1536` -> `"1.5 KiB"`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def clear(names: list[str] | None = None, hashes: bool = False) -> list[CacheItem]:
    """Removes the cached models and downloads of `names` (all when None).

    The sha256 record is kept (so a changed file is still caught after a re-download)
    unless `hashes=True`. Returns what was removed.
    """

    wanted = None if not names else set(names)
    removed = []
    for item in items():
        if wanted is None or item.name in wanted:
            shutil.rmtree(item.path)
            removed.append(item)
    record = cache_dir() / "downloads" / RECORD_FILE
    if hashes and record.exists():
        record.unlink()
    return removed
