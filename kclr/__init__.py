"""kclr: contrastive visual representation learning (SimCLR, SupCon) for Keras 3.

Importing `kclr` is cheap: TensorFlow and Keras are imported only when a
component that needs them is first used (`kclr.ContrastiveTrainer`, `kclr.models`, ...).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public names, resolved lazily: name -> "module:attribute" (or "module" for a subpackage).
_LAZY = {
    "ContrastiveTrainer": "kclr.trainer:ContrastiveTrainer",
    "augment": "kclr.augment",
    "data": "kclr.data",
    "distribute": "kclr.distribute",
    "evaluation": "kclr.evaluation",
    "losses": "kclr.losses",
    "models": "kclr.models",
    "optimizers": "kclr.optimizers",
    "presets": "kclr.presets",
    "registry": "kclr.registry",
    "trainer": "kclr.trainer",
    "zoo": "kclr.zoo",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'kclr' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
