"""The catalog of published models (packaged data: `kclr/zoo/catalog.json`).

Each entry describes one model: architecture, the authors' reported linear-eval
top-1, license, where the authors' checkpoint lives, and (once published) the
Hugging Face Hub repository and pinned revision with the sha256 of its weight file.
Reading the catalog does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from functools import lru_cache
from importlib import resources
from typing import Any

OFFICIAL_URL_ENV = "KCLR_OFFICIAL_CHECKPOINT_URL"
DEFAULT_OFFICIAL_URL = "https://storage.googleapis.com"


class UnknownModelError(KeyError):
    """The name is not in the catalog."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """One published model."""

    name: str
    title: str
    paper: str
    paper_url: str
    arch: dict[str, Any]
    feature_dim: int
    dataset: str
    linear_eval_top1: float
    linear_eval_source: str
    license: str
    checkpoint: dict[str, Any]
    has_projection_head: bool
    hub: dict[str, Any]

    @property
    def arch_name(self) -> str:
        """Short architecture code as used by `kclr zoo convert --arch`, e.g. `r50_1x_sk0`."""
        return arch_code(**self.arch)

    def checkpoint_urls(self, base_url: str | None = None) -> dict[str, str]:
        """URL of each file of the authors' checkpoint (base URL from the environment)."""
        base = (base_url or official_base_url()).rstrip("/")
        path = self.checkpoint["path"].strip("/")
        if self.checkpoint.get("archive"):
            return {self.checkpoint["files"][0]: f"{base}/{path}"}
        return {name: f"{base}/{path}/{name}" for name in self.checkpoint["files"]}


def official_base_url() -> str:
    """Base URL of the authors' bucket; `$KCLR_OFFICIAL_CHECKPOINT_URL` overrides it (mirrors)."""
    return os.environ.get(OFFICIAL_URL_ENV) or DEFAULT_OFFICIAL_URL


@lru_cache(maxsize=1)
def _load() -> dict[str, CatalogEntry]:
    text = resources.files("kclr.zoo").joinpath("catalog.json").read_text(encoding="utf-8")
    data = json.loads(text)
    fields = {f.name for f in dataclasses.fields(CatalogEntry)}
    entries = {}
    for raw in data["models"]:
        unknown = set(raw) - fields
        if unknown:  # pragma: no cover - guards the packaged file
            raise ValueError(f"catalog.json entry {raw.get('name')!r} has unknown fields {unknown}")
        entries[raw["name"]] = CatalogEntry(**raw)
    return entries


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
    close = difflib.get_close_matches(name, catalog, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownModelError(
        f"Unknown model {name!r}.{hint} Published models: {', '.join(catalog)}. "
        "`kclr zoo list` shows them; a local folder or 'hf://owner/repo[@revision]' works too."
    )


_ARCH_RE = re.compile(r"^r(?P<depth>\d+)_(?P<width>\d+(?:\.\d+)?)x(?:_sk(?P<sk>[01]))?$")


def parse_arch(code: str) -> dict[str, Any]:
    """Parses an architecture code such as `r50_1x`, `r50_2x_sk1`, `r152_3x_sk1`.

    Returns `ResNet` keyword arguments (`depth`, `width_multiplier`, `sk_ratio`).
    """
    match = _ARCH_RE.match(code.strip().lower())
    if not match:
        raise ValueError(
            f"Unknown architecture code {code!r}. Expected r<depth>_<width>x[_sk0|_sk1], "
            "e.g. 'r50_1x', 'r50_2x_sk1', 'r152_3x_sk1'."
        )
    width = float(match["width"])
    return {
        "depth": int(match["depth"]),
        "width_multiplier": int(width) if width.is_integer() else width,
        "sk_ratio": 0.0625 if match["sk"] == "1" else 0.0,
    }


def arch_code(depth: int, width_multiplier: float, sk_ratio: float = 0.0, **_: Any) -> str:
    """Inverse of `parse_arch`: `(50, 2, 0.0625)` -> `r50_2x_sk1`."""
    width = int(width_multiplier) if float(width_multiplier).is_integer() else width_multiplier
    return f"r{depth}_{width}x_sk{1 if sk_ratio > 0 else 0}"
