"""Data sources and tf.data input pipelines for contrastive pretraining and evaluation.

Example:

```python
import kclr

dataset = kclr.data.pretraining_dataset("photos/", recipe="simclr", image_size=224,
                                        views=2, global_batch_size=256)
test = kclr.data.labelled_dataset("photos/", split="test", image_size=224, batch_size=256)
```

`kclr.data.demo` (the built-in demo dataset) is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "pretraining_dataset": "kclr.data.pipeline",
    "labelled_dataset": "kclr.data.pipeline",
    "build_dataset": "kclr.data.pipeline",
    "resolve_source": "kclr.data.sources",
    "num_examples": "kclr.data.sources",
    "Source": "kclr.data.sources",
    "UnreadableSourceError": "kclr.data.sources",
    "label_fraction_indices": "kclr.data.subsets",
    "read_subset_file": "kclr.data.subsets",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in ("demo", "sources", "pipeline", "subsets", "decode"):
        return importlib.import_module(f"kclr.data.{name}")
    raise AttributeError(f"module 'kclr.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "demo", "sources", "pipeline", "subsets", "decode"])
