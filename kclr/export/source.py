"""What `kclr export MODEL` exports: a kclr encoder's features or a classifier's logits."""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any


@dataclasses.dataclass(frozen=True)
class Source:
    """A model to export.

    Attributes:
        model: kclr's model, images `[B, S, S, 3]` (RGB in [0, 1]) -> `output`.
        output: `"features"` (an encoder) or `"logits"` (a fine-tuned classifier).
        image_size: `S`, the side of the exported input.
        encoder: the kclr encoder inside `model` (the model itself for an encoder).
        name: what MODEL was (a path or a zoo name).
    """

    model: Any
    output: str
    image_size: int
    encoder: Any
    name: str


def load_source(model: Any, image_size: int | None = None) -> Source:
    """Resolves MODEL into the model to export.

    Args:
        model: a run directory, its `export/` zoo folder, a zoo name or folder (anything
            `kclr.evaluation.protocols.load_model` accepts), a fine-tuned classifier file
            `X.keras` (`kclr finetune --out X`), or a `keras.Model` (an encoder or a
            classifier: images -> features or logits).
        image_size: the exported input side; default: the zoo folder's
            `preprocessing.image_size`, else the model's fixed input size, else 224.

    Returns:
        The `Source`.

    Raises:
        FileNotFoundError: `model` looks like a path but does not exist.
        ValueError: `model` is neither a path nor a known zoo name.
    """
    import keras

    if isinstance(model, keras.Model):
        return _from_model(model, image_size, name=model.name)
    spec = os.fspath(model)
    path = pathlib.Path(spec)
    if spec.endswith(".keras"):
        if not path.is_file():
            raise FileNotFoundError(
                f"MODEL {spec!r} does not exist. Expected a fine-tuned classifier file written "
                "by `kclr finetune --out X` (X.keras), a run directory, a zoo folder or a zoo "
                "name (`kclr zoo list`)."
            )
        _register_kclr_classes()
        classifier = keras.saving.load_model(spec, compile=False)
        return _from_model(classifier, image_size, name=spec)
    looks_like_path = os.sep in spec or spec.startswith(".") or (os.altsep or "\0") in spec
    if looks_like_path and not path.exists():
        raise FileNotFoundError(
            f"MODEL {spec!r} does not exist. Expected a run directory, its export/ folder, "
            "a zoo folder, a zoo name (`kclr zoo list`) or a fine-tuned classifier X.keras."
        )
    from kclr.evaluation.protocols import load_model, model_image_size
    from kclr.zoo.catalog import UnknownModelError

    try:
        encoder, _ = load_model(spec)
    except UnknownModelError as error:
        raise ValueError(
            f"MODEL {spec!r} is neither an existing path nor a zoo name: {error.args[0]}"
        ) from None
    size = image_size or model_image_size(encoder, default=_fixed_size(encoder) or 224)
    return Source(encoder, "features", int(size), encoder, spec)


def _from_model(model, image_size: int | None, name: str) -> Source:
    """A `keras.Model` given directly: a kclr encoder, or a classifier holding one."""
    from kclr.models import KerasApplicationsEncoder, KerasHubEncoder, ResNet

    encoders = (ResNet, KerasHubEncoder, KerasApplicationsEncoder)
    if isinstance(model, encoders):
        output, encoder = "features", model
    else:
        nested = [layer for layer in model.layers if isinstance(layer, encoders)]
        output, encoder = "logits", (nested[0] if nested else model)
    size = image_size or _fixed_size(model) or getattr(encoder, "image_size", None)
    if not size:
        raise ValueError(
            f"The input size of {name!r} is not fixed (input shape {model.input_shape}); "
            "pass --image-size (image_size=...)."
        )
    return Source(model, output, int(size), encoder, name)


def _fixed_size(model) -> int | None:
    shape = model.input_shape
    return int(shape[1]) if shape[1] is not None and shape[1] == shape[2] else None


def _register_kclr_classes() -> None:
    """Imports the modules that register kclr's layers, so a classifier file loads."""
    import kclr.models  # noqa: F401  (ResNet, BatchNormalization, TokenPooling, heads, ...)
