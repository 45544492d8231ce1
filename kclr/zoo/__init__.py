"""The model zoo: pretrained SimCLR encoders, conversion of the authors' checkpoints, Hub I/O.

```python
import kclr

encoder = kclr.zoo.load("simclr-r50-1x")            # or "hf://owner/repo@rev", or a folder
features = encoder(kclr.zoo.preprocess(images))     # [B, 2048]
kclr.zoo.save(encoder, "my-export")                 # config.json + model.weights.h5 + ...
```

Importing this package is cheap: TensorFlow and huggingface_hub are imported only
when a function that needs them runs.
"""

from __future__ import annotations

from kclr._lazy import lazy_exports

_LAZY = {
    "load": "kclr.zoo.api:load",
    "pull": "kclr.zoo.api:pull",
    "cache_dir": "kclr.zoo.api:cache_dir",
    "save": "kclr.zoo.io:save",
    "load_folder": "kclr.zoo.io:load_folder",
    "ZooFormatError": "kclr.zoo.io:ZooFormatError",
    "convert": "kclr.zoo.converter:convert",
    "ConversionError": "kclr.zoo.converter:ConversionError",
    "push": "kclr.zoo.hub:push",
    "prepare_upload": "kclr.zoo.hub:prepare_upload",
    "preprocess": "kclr.zoo.preprocessing:preprocess",
    "IntegrityError": "kclr.zoo.safety:IntegrityError",
    "OfflineError": "kclr.zoo.download:OfflineError",
    "DownloadError": "kclr.zoo.download:DownloadError",
    "catalog": "kclr.zoo.catalog",
    "verify": "kclr.zoo.verify",
    "publish": "kclr.zoo.publish",
    "cache": "kclr.zoo.cache",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports("kclr.zoo", _LAZY, globals())
