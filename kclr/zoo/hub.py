"""Deprecated: Hub download moved to `kclr.zoo.sources.hub`, upload to `kclr.zoo.publish.upload`."""

from __future__ import annotations

import warnings

from kclr.zoo.folder.files import find_folder as resolve_source_folder
from kclr.zoo.publish.upload import prepare_upload, push
from kclr.zoo.sources.hub import HF_PREFIX, download, hub_cache_dir, parse_hf

__all__ = [
    "HF_PREFIX",
    "download",
    "hub_cache_dir",
    "parse_hf",
    "prepare_upload",
    "push",
    "resolve_source_folder",
]

warnings.warn(
    "`kclr.zoo.hub` is deprecated: import from `kclr.zoo.sources.hub` (download) or "
    "`kclr.zoo.publish.upload` (prepare_upload, push); `kclr.zoo.push` stays.",
    DeprecationWarning,
    stacklevel=2,
)
