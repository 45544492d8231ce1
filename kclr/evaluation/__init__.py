"""Evaluation of learned representations: kNN, linear probe, fine-tuning, feature extraction.

- `knn_accuracy` / `knn_evaluate`: temperature-weighted cosine kNN (InstDisc, k=200);
- `KNNMonitor`: the same kNN as a Keras callback, logged every epoch;
- `linear_evaluation`: the SimCLR linear protocol on cached frozen features;
- `finetune`: SimCLRv2 semi-supervised fine-tuning with a label fraction;
- `extract_features`: batched features (+ labels, file names) with BN in inference mode.

Modules that need TensorFlow are imported on first use.

Example:

```python
import kclr

encoder = kclr.zoo.load("runs/demo/export")
train = kclr.evaluation.extract_features(encoder, kclr.data.demo.load("train"))
test = kclr.evaluation.extract_features(encoder, kclr.data.demo.load("test"))
kclr.evaluation.knn_accuracy(train["features"], train["labels"],
                             test["features"], test["labels"])
```
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "knn_accuracy": "kclr.evaluation.knn",
    "knn_evaluate": "kclr.evaluation.knn",
    "knn_scores": "kclr.evaluation.knn",
    "topk_accuracy": "kclr.evaluation.knn",
    "KNNMonitor": "kclr.evaluation.monitor",
    "extract_features": "kclr.evaluation.features",
    "save_features": "kclr.evaluation.features",
    "linear_evaluation": "kclr.evaluation.linear",
    "train_linear_classifier": "kclr.evaluation.linear",
    "finetune": "kclr.evaluation.finetune",
    "build_classifier": "kclr.evaluation.finetune",
    "evaluate_model": "kclr.evaluation.protocols",
    "write_results": "kclr.evaluation.protocols",
    "format_table": "kclr.evaluation.protocols",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kclr.evaluation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
