"""The catalog of published models, generated from the release table (`kclr.zoo.release`).

Each entry describes one model: architecture, the authors' reported top-1, license,
where the authors' checkpoint lives (anonymous TF1 files first, then fallbacks such
as the v1 zip) and, once published, the Hugging Face Hub repository with its pinned
revision and the sha256 of its weight file. The Hub fields come from the lock file
`kclr zoo publish` writes (`kclr/zoo/hub_lock.json`, or `$KCLR_HUB_LOCK`).
Reading the catalog does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import pathlib
from functools import lru_cache
from importlib import resources
from typing import Any

from kclr.zoo.catalog import release
from kclr.zoo.conversion.official import arch_code

OFFICIAL_URL_ENV = "KCLR_OFFICIAL_CHECKPOINT_URL"
DEFAULT_OFFICIAL_URL = "https://storage.googleapis.com"
HUB_LOCK_ENV = "KCLR_HUB_LOCK"
HUB_LOCK_FILE = "hub_lock.json"
HUB_LOCK_FORMAT = "kclr.zoo.hub-lock/1"


class UnknownModelError(KeyError):
    """The name is not in the catalog."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """One published model (see `kclr.zoo.release` for the fields' meaning)."""

    name: str
    title: str
    version: str
    category: str
    paper: str
    paper_url: str
    arch: dict[str, Any]
    feature_dim: int
    dataset: str
    top1: float | None
    top1_protocol: str
    top1_source: str | None
    license: str
    checkpoint: dict[str, Any]
    saved_model: str
    has_projection_head: bool | None
    ft_proj_selector: int
    hub: dict[str, Any]

    @property
    def arch_name(self) -> str:
        """Short architecture code as used by `kclr zoo convert --arch`, e.g. `r50_1x_sk0`."""
        return arch_code(**self.arch)

    @property
    def linear_eval_top1(self) -> float | None:
        """The reported linear-evaluation top-1 (pretrained models only)."""
        return self.top1 if self.top1_protocol == "linear evaluation" else None

    @property
    def top1_text(self) -> str:
        """`"71.7"` or `"not reported"`."""
        return "not reported" if self.top1 is None else f"{self.top1:.1f}"

    def checkpoint_sources(self, base_url: str | None = None) -> list[dict[str, Any]]:
        """Each download source: `{"urls": {file: url}, "archive": "zip" | None}`, in order."""
        base = (base_url or official_base_url()).rstrip("/")
        sources = []
        for source in self.checkpoint["sources"]:
            path = source["path"].strip("/")
            if source.get("archive"):
                urls = {path.rsplit("/", 1)[-1]: f"{base}/{path}"}
            else:
                urls = {name: f"{base}/{path}/{name}" for name in source["files"]}
            sources.append({"urls": urls, "archive": source.get("archive")})
        return sources

    def checkpoint_urls(self, base_url: str | None = None) -> dict[str, str]:
        """URL of each file of the first (preferred) source of the authors' checkpoint."""
        return self.checkpoint_sources(base_url)[0]["urls"]

    def saved_model_url(self, base_url: str | None = None) -> str:
        """URL of the authors' TF2 SavedModel folder (for `kclr zoo verify --reference`)."""
        return f"{(base_url or official_base_url()).rstrip('/')}/{self.saved_model}"


def official_base_url() -> str:
    """Base URL of the authors' bucket; `$KCLR_OFFICIAL_CHECKPOINT_URL` overrides it (mirrors)."""
    return os.environ.get(OFFICIAL_URL_ENV) or DEFAULT_OFFICIAL_URL


def hub_lock_path() -> pathlib.Path:
    """The lock file read for Hub entries: `$KCLR_HUB_LOCK` or the packaged one."""
    if os.environ.get(HUB_LOCK_ENV):
        return pathlib.Path(os.environ[HUB_LOCK_ENV])
    return pathlib.Path(str(resources.files("kclr.zoo").joinpath(HUB_LOCK_FILE)))


def read_hub_lock(path: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """`{name: {"repo", "revision", "sha256": {file: hash}}}` from a lock file (empty if absent)."""
    path = pathlib.Path(path) if path is not None else hub_lock_path()
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != HUB_LOCK_FORMAT or not isinstance(data.get("models"), dict):
        raise ValueError(
            f"{os.fspath(path)!r} is not a kclr Hub lock file (expected format "
            f"{HUB_LOCK_FORMAT!r} with a 'models' table). Re-create it with `kclr zoo publish`."
        )
    return data["models"]


_EMPTY_HUB = {"repo": None, "revision": None, "sha256": {"model.weights.h5": None}}


@lru_cache(maxsize=4)
def _load_cached(lock: str, stamp: int) -> dict[str, CatalogEntry]:
    pins = read_hub_lock(lock)
    entries = {}
    for raw in release.expand():
        hub = dict(pins.get(raw["name"]) or _EMPTY_HUB)
        entries[raw["name"]] = CatalogEntry(**raw, hub=hub)
    return entries


def _load() -> dict[str, CatalogEntry]:
    path = hub_lock_path()
    stamp = path.stat().st_mtime_ns if path.is_file() else 0  # a rewritten lock is re-read
    return _load_cached(os.fspath(path), stamp)


def names() -> list[str]:
    """Names of the published models."""
    return list(_load())


def entries() -> list[CatalogEntry]:
    """All catalog entries, in catalog order."""
    return list(_load().values())


def get(name: str) -> CatalogEntry:
    """The catalog entry for `name`; a clear error with suggestions otherwise."""
    catalog = _load()
    if name in catalog:
        return catalog[name]
    close = difflib.get_close_matches(name, list(catalog), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownModelError(
        f"Unknown model {name!r}.{hint} The catalog has {len(catalog)} models; "
        "`kclr zoo list` shows them; a local folder or 'hf://owner/repo[@revision]' works too."
    )


def is_known(name: str) -> bool:
    """True for a catalog name."""
    return name in _load()
