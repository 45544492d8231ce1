"""Evaluation of learned representations: kNN, linear probe, fine-tuning, feature extraction.

- `knn_accuracy` / `knn_evaluate`: temperature-weighted cosine kNN (InstDisc, k=200);
- `KNNMonitor`: the same kNN as a Keras callback, logged every epoch;
- `linear_evaluation`: the SimCLR linear protocol on cached frozen features;
- `finetune`: SimCLRv2 semi-supervised fine-tuning with a label fraction;
- `extract_features`: batched features (+ labels, file names) with BN in inference mode;
- `write_neighbours`, `nearest_neighbours`, `pca_2d`: pictures of what a representation
  learned (a grid of queries and their cosine nearest neighbours, a 2-D PCA of the features);
- `KNNProtocol`, `LinearProtocol`, `FinetuneProtocol`: the protocols as registered components
  (`kclr.registry.protocols`), configured by a run config's `knn`, `linear_eval`, `finetune` specs.

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

from kclr._lazy import lazy_exports

_LAZY = {
    "knn_accuracy": "kclr.evaluation.knn:knn_accuracy",
    "knn_evaluate": "kclr.evaluation.knn:knn_evaluate",
    "knn_scores": "kclr.evaluation.knn:knn_scores",
    "topk_accuracy": "kclr.evaluation.knn:topk_accuracy",
    "KNNMonitor": "kclr.evaluation.monitor:KNNMonitor",
    "extract_features": "kclr.evaluation.features:extract_features",
    "save_features": "kclr.evaluation.features:save_features",
    "write_neighbours": "kclr.evaluation.neighbours:write_neighbours",
    "nearest_neighbours": "kclr.evaluation.neighbours:nearest_neighbours",
    "plot_neighbours_grid": "kclr.evaluation.neighbours:plot_neighbours_grid",
    "plot_embedding": "kclr.evaluation.neighbours:plot_embedding",
    "pca_2d": "kclr.evaluation.neighbours:pca_2d",
    "linear_evaluation": "kclr.evaluation.linear:linear_evaluation",
    "train_linear_classifier": "kclr.evaluation.linear:train_linear_classifier",
    "finetune": "kclr.evaluation.fine_tuning:finetune",
    "build_classifier": "kclr.evaluation.fine_tuning:build_classifier",
    "evaluate_model": "kclr.evaluation.protocols:evaluate_model",
    "Protocol": "kclr.evaluation.protocols:Protocol",
    "KNNProtocol": "kclr.evaluation.protocols:KNNProtocol",
    "LinearProtocol": "kclr.evaluation.protocols:LinearProtocol",
    "FinetuneProtocol": "kclr.evaluation.protocols:FinetuneProtocol",
    "write_results": "kclr.evaluation.protocols:write_results",
    "format_table": "kclr.evaluation.protocols:format_table",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports("kclr.evaluation", _LAZY, globals())
