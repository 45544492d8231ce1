"""A `KerasHubEncoder` as a keras-hub preset folder, to fine-tune with keras-hub's tasks.

The folder holds what `backbone.save_to_preset(folder)` writes (`config.json`,
`model.weights.h5`, `metadata.json`) plus the preprocessing keras-hub's image tasks load
without a `task.json`: `preprocessor.json` (e.g. a `ViTImageClassifierPreprocessor`) and
`image_converter.json` (e.g. a `ViTImageConverter`). Then
`keras_hub.models.Backbone.from_preset(folder)` gives the backbone and
`keras_hub.models.ImageClassifier.from_preset(folder, num_classes=N)` the family's
classifier (keras-hub picks the `ImageClassifier` subclass whose `backbone_cls` is the
backbone's class).

The image converter takes images in [0, 255], keras-hub's convention, and reproduces
kclr's input mapping: kclr computes `x * input_scale + input_offset` on images `x` in
[0, 1], so the converter gets `scale = input_scale / 255` and `offset = input_offset`
(per channel when kclr's are lists), at the encoder's image size.
"""

from __future__ import annotations

import inspect
from typing import Any

from kclr.export.source import Source
from kclr.models.keras_hub_encoder import KerasHubEncoder, import_keras_hub, prefix_tokens


class NotKerasHubError(ValueError):
    """The keras-hub format was asked for an encoder that is not a `KerasHubEncoder`."""


def keras_hub_encoder(source: Source) -> KerasHubEncoder:
    """The `KerasHubEncoder` of `source`, or a NotKerasHubError naming the formats that work."""
    if source.output != "features" or not isinstance(source.encoder, KerasHubEncoder):
        what = (
            "a fine-tuned classifier"
            if source.output == "logits"
            else f"a {type(source.encoder).__name__} encoder"
        )
        raise NotKerasHubError(
            f"--format keras-hub writes the backbone of a KerasHubEncoder (encoder "
            f"{{name: keras_hub}}) as a keras-hub preset, but {source.name!r} is {what}. "
            "Use --format keras, saved_model, tflite or onnx for it."
        )
    return source.encoder


def _subclass(base, backbone_cls):
    """The subclass of `base` (recursively) whose `backbone_cls` is `backbone_cls`, or None."""
    stack = list(base.__subclasses__())
    while stack:
        cls = stack.pop()
        if getattr(cls, "backbone_cls", None) is backbone_cls:
            return cls
        stack.extend(cls.__subclasses__())
    return None


def _scaled(value, factor: float):
    if isinstance(value, (list, tuple)):
        return [float(v) * factor for v in value]
    return float(value) * factor


def write_keras_hub(source: Source, path: str, float16: bool = False) -> dict[str, Any]:
    """Writes the backbone preset and an image converter / preprocessor for its tasks."""
    encoder = keras_hub_encoder(source)
    keras_hub = import_keras_hub("--format keras-hub")
    backbone = encoder.backbone
    backbone.save_to_preset(path)
    size = source.image_size
    converter_cls = _subclass(keras_hub.layers.ImageConverter, type(backbone))
    converter_cls = converter_cls or keras_hub.layers.ImageConverter
    arguments = inspect.signature(keras_hub.layers.ImageConverter.__init__).parameters
    converter = converter_cls(
        image_size=(size, size),
        scale=_scaled(encoder.input_scale, 1.0 / 255.0),
        offset=_scaled(encoder.input_offset, 1.0),
        **({"crop_to_aspect_ratio": False} if "crop_to_aspect_ratio" in arguments else {}),
    )
    preprocessor_cls = _subclass(keras_hub.models.ImageClassifierPreprocessor, type(backbone))
    classifier_cls = _subclass(keras_hub.models.ImageClassifier, type(backbone))
    if preprocessor_cls is not None:
        preprocessor_cls(image_converter=converter).save_to_preset(path)
    else:
        converter.save_to_preset(path)
    return {
        "backbone_class": type(backbone).__name__,
        "image_converter": {
            "class": type(converter).__name__,
            "input_range": [0, 255],
            "scale": converter.scale,
            "offset": converter.offset,
            "image_size": [size, size],
        },
        "preprocessor_class": None if preprocessor_cls is None else preprocessor_cls.__name__,
        "image_classifier_class": None if classifier_cls is None else classifier_cls.__name__,
        "pooling": encoder.pooling,
        "num_prefix_tokens": prefix_tokens(encoder.backbone_config),
    }
