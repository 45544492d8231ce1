"""The model zoo: pretrained SimCLR encoders, conversion of the authors' checkpoints, Hub I/O.

```python
import kclr

encoder = kclr.zoo.load("simclr-r50-1x")            # or "hf://owner/repo@rev", or a folder
features = encoder(kclr.zoo.preprocess(images))     # [B, 2048]
kclr.zoo.save(encoder, "my-export")                 # config.json + model.weights.h5 + ...
```

Layout, one sub-package per concern, each importing only those before it: `folder` (the
folder format, its files and sha256 checks, safe extraction, the generic card),
`conversion` (the authors' checkpoints to Keras, comparison with their SavedModel),
`catalog` (the catalog, the release table, the catalog's model cards), `sources` (the one
resolver, `sources.resolve`, for a name, `hf://`, an https URL or a folder; the Hub and
HTTP downloads; kclr's cache), then `door` (the one door for
models: `open_model` opens anything a command takes as MODEL, once), `publish` (Hub upload,
the lock file) and `api` (`load`, `pull`, `convert`, `verify`).

Importing this package is cheap: TensorFlow and huggingface_hub are imported only
when a function that needs them runs.
"""

from __future__ import annotations

from kclr._lazy import lazy_exports

_LAZY = {
    "load": "kclr.zoo.api:load",
    "open_model": "kclr.zoo.door:open_model",
    "LoadedModel": "kclr.zoo.door:LoadedModel",
    "pull": "kclr.zoo.api:pull",
    "resolve": "kclr.zoo.sources.resolve:resolve",
    "cache_dir": "kclr.zoo.sources.cache:cache_dir",
    "save": "kclr.zoo.folder.format:save",
    "load_folder": "kclr.zoo.folder.format:load_folder",
    "ZooFormatError": "kclr.zoo.folder.files:ZooFormatError",
    "convert": "kclr.zoo.api:convert",
    "ConversionError": "kclr.zoo.conversion.mapping:ConversionError",
    "verify": "kclr.zoo.api:verify",
    "push": "kclr.zoo.publish.upload:push",
    "prepare_upload": "kclr.zoo.publish.upload:prepare_upload",
    "preprocess": "kclr.zoo.preprocessing:preprocess",
    "IntegrityError": "kclr.zoo.folder.safety:IntegrityError",
    "OfflineError": "kclr.zoo.sources.http:OfflineError",
    "DownloadError": "kclr.zoo.sources.http:DownloadError",
    "catalog": "kclr.zoo.catalog",
    "publish": "kclr.zoo.publish",
    "cache": "kclr.zoo.sources.cache",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports("kclr.zoo", _LAZY, globals())
