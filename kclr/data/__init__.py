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

from kclr._lazy import lazy_exports

_LAZY = {
    "pretraining_dataset": "kclr.data.pipeline:pretraining_dataset",
    "labelled_dataset": "kclr.data.pipeline:labelled_dataset",
    "build_dataset": "kclr.data.build:build_dataset",
    "PipelineOptions": "kclr.data.build:PipelineOptions",
    "check_views": "kclr.data.build:check_views",
    "photometric_stage": "kclr.data.photometric:photometric_stage",
    "resolve_photometric": "kclr.data.photometric:resolve_photometric",
    "resolve_source": "kclr.data.sources:resolve_source",
    "num_examples": "kclr.data.sources:num_examples",
    "Source": "kclr.data.sources:Source",
    "UnreadableSourceError": "kclr.data.sources:UnreadableSourceError",
    "label_fraction_indices": "kclr.data.subsets:label_fraction_indices",
    "read_subset_file": "kclr.data.subsets:read_subset_file",
    "demo": "kclr.data.demo",
    "sources": "kclr.data.sources",
    "pipeline": "kclr.data.pipeline",
    "subsets": "kclr.data.subsets",
    "decode": "kclr.data.decode",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports("kclr.data", _LAZY, globals())
