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

import importlib
from typing import Any

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
    "catalog": "kclr.zoo.catalog",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'kclr.zoo' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
