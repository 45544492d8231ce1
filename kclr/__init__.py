"""kclr: contrastive visual representation learning (SimCLR, SupCon) for Keras 3.

Importing `kclr` is cheap: TensorFlow and Keras are imported only when a
component that needs them is first used (`kclr.ContrastiveTrainer`, `kclr.models`, ...).
"""

from __future__ import annotations

from kclr._lazy import lazy_exports

__version__ = "0.1.0"

# Public names, resolved lazily: name -> "module:attribute" (or "module" for a subpackage).
_LAZY = {
    "ContrastiveTrainer": "kclr.trainer:ContrastiveTrainer",
    "augment": "kclr.augment",
    "curate": "kclr.curate",
    "data": "kclr.data",
    "distribute": "kclr.distribute",
    "evaluation": "kclr.evaluation",
    "export": "kclr.export",
    "losses": "kclr.losses",
    "models": "kclr.models",
    "optimizers": "kclr.optimizers",
    "presets": "kclr.presets",
    "registry": "kclr.registry",
    "trainer": "kclr.trainer",
    "zoo": "kclr.zoo",
}

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = lazy_exports("kclr", _LAZY, globals())
