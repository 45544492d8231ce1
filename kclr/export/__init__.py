"""Export kclr models to formats that run without kclr: `.keras`, SavedModel, TFLite, ONNX
and keras-hub presets.

```python
import kclr

report = kclr.export.export("runs/simclr/export", "tflite", "exports/simclr.tflite")
for fmt in ("keras", "saved_model", "onnx"):
    print(kclr.export.format_reports([kclr.export.export(model, fmt, f"out/{fmt}")]))
```

Layout: `source` (MODEL, opened by `kclr.zoo.door.open_model`, sized for export), `plain` (the graph
rebuilt from built-in Keras layers), `formats` (the writers), `keras_hub_preset` (the
keras-hub preset folder), `check` (the no-kclr child process), `api` (`export`). Importing
this package is cheap: TensorFlow is imported when `export` runs. See docs/export.md.
"""

from __future__ import annotations

from kclr._lazy import lazy_exports

_LAZY = {
    "export": "kclr.export.api:export",
    "format_reports": "kclr.export.api:format_reports",
    "FORMATS": "kclr.export.api:FORMATS",
    "FLOAT32_BOUND": "kclr.export.api:FLOAT32_BOUND",
    "FLOAT16_BOUND": "kclr.export.api:FLOAT16_BOUND",
    "ExportCheckError": "kclr.export.check:ExportCheckError",
    "NotPlainError": "kclr.export.plain:NotPlainError",
    "NotKerasHubError": "kclr.export.keras_hub_preset:NotKerasHubError",
    "source": "kclr.export.source:source",
    "plain_model": "kclr.export.plain:plain_model",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports("kclr.export", _LAZY, globals())
