"""Deprecated: the zoo folder format moved to `kclr.zoo.folder.format`."""

from __future__ import annotations

import warnings

from kclr.zoo.folder.format import *  # noqa: F403 - the moved public names
from kclr.zoo.folder.format import __all__  # noqa: F401

warnings.warn(
    "`kclr.zoo.io` is deprecated: import from `kclr.zoo.folder.format` (or use `kclr.zoo.save`, "
    "`kclr.zoo.load_folder`).",
    DeprecationWarning,
    stacklevel=2,
)
