"""A kclr model rebuilt from built-in Keras layers only, for a `.keras` file without kclr.

`model.save("x.keras")` records kclr's registered classes (`kclr>ResNet`,
`kclr>BatchNormalization`, `kclr>TokenPooling`, ...), so the file opens only where kclr is
importable. `plain_model` clones the graph instead, layer by layer, and replaces each kclr
layer by built-in layers that compute the same function at inference:

- the ResNets' `Conv2D` (a matrix product on 1x1 maps) -> `keras.layers.Conv2D`, same weights;
- `kclr.models.BatchNormalization` -> `keras.layers.BatchNormalization` with the same config
  and weights (kclr's subclass changes only how batch moments are computed in training on
  one replica; momentum, epsilon and the inference path are Keras's own);
- `TokenPooling` -> `Cropping1D` + `Flatten` (`"cls"`) or `Cropping1D` +
  `GlobalAveragePooling1D` (`"mean"` of the patch tokens);
- `ApplicationPreprocessing` -> a `Dense(3)` on the channel axis holding the exact affine
  map of `preprocess_input(255 * x)` (every Keras Applications mode is per-channel affine,
  the caffe BGR flip included);
- `ProjectionHead` (in a fine-tuned classifier) -> its Dense / BatchNorm / ReLU layers;
- the functional encoders (`ResNet`, `KerasHubEncoder`, ...) -> plain functional models.

Built-in Keras layers and keras-hub's own classes (a `KerasHubEncoder`'s backbone) are
kept as they are, sharing their weights. SK ResNets (`SKSqueeze`, `SKMix`) are refused.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from kclr.models.adapters import ApplicationPreprocessing, TokenPooling
from kclr.models.batch_norm import BatchNormalization
from kclr.models.heads import ProjectionHead
from kclr.models.resnet import Conv2D, SKMix, SKSqueeze


class NotPlainError(ValueError):
    """A model holds a layer that has no exact equivalent in built-in Keras layers."""


def plain_model(model, image_size: int, name: str | None = None):
    """`model` rebuilt from built-in Keras layers, for images `[B, image_size, image_size, 3]`.

    Args:
        model: a kclr encoder (images -> features) or fine-tuned classifier (-> logits).
        image_size: the side of the square RGB input.
        name: the new model's name (default: `model.name`).

    Returns:
        A functional `keras.Model` whose config names only built-in Keras classes (and
        keras-hub's, for a keras-hub backbone), with `model`'s weights.

    Raises:
        NotPlainError: `model` holds a layer without a built-in equivalent (an SK ResNet's
            `SKSqueeze` / `SKMix`, or a plugin's layer).
    """
    assignments: list[tuple[Any, list[np.ndarray]]] = []
    inputs = keras.Input((image_size, image_size, 3), name="images")
    outputs = _clone(model, assignments)(inputs)
    plain = keras.Model(inputs, outputs, name=name or model.name)
    for layer, weights in assignments:
        layer.set_weights(weights)
    return plain


def _clone(model, assignments):
    return keras.models.clone_model(
        model, clone_function=lambda layer: _replace(layer, assignments)
    )


def _replace(layer, assignments):
    """The built-in layer(s) standing for `layer` in the rebuilt graph."""
    if isinstance(layer, (SKSqueeze, SKMix)):
        raise NotPlainError(
            f"The model holds the selective-kernel layer {type(layer).__name__} "
            f"({layer.name!r}) of an SK ResNet, which has no built-in Keras equivalent, so it "
            "cannot be written as a plain `.keras` file. Export it with --format "
            "saved_model, tflite or onnx instead."
        )
    if isinstance(layer, Conv2D):  # kclr's only changes how a 1x1 map is computed
        plain = keras.layers.Conv2D.from_config(layer.get_config())
        assignments.append((plain, layer.get_weights()))
        return plain
    if isinstance(layer, BatchNormalization):
        config = layer.get_config()
        plain = keras.layers.BatchNormalization.from_config(config)
        assignments.append((plain, layer.get_weights()))
        return plain
    if isinstance(layer, TokenPooling):
        return _token_pooling(layer)
    if isinstance(layer, ApplicationPreprocessing):
        return _affine_preprocessing(layer, assignments)
    if isinstance(layer, ProjectionHead):
        return _projection_head(layer, assignments)
    if isinstance(layer, keras.Model) and not _is_keras_hub(layer):
        if not isinstance(layer, keras.Sequential) and not hasattr(layer, "_nodes_by_depth"):
            raise _unknown(layer)
        return _clone(layer, assignments)
    if _is_keras_hub(layer) or type(layer).__module__.startswith("keras."):
        return layer
    raise _unknown(layer)


def _is_keras_hub(layer) -> bool:
    return type(layer).__module__.startswith("keras_hub.")


def _unknown(layer) -> NotPlainError:
    cls = type(layer)
    return NotPlainError(
        f"The model holds the layer {layer.name!r} of class {cls.__module__}.{cls.__name__}, "
        "which is neither a built-in Keras layer nor one kclr knows how to rewrite as one, "
        "so it cannot be written as a `.keras` file that loads without its package. Export "
        "it with --format saved_model, tflite or onnx instead."
    )


def _token_pooling(layer: TokenPooling):
    """`Cropping1D` + `Flatten` (class token) or + `GlobalAveragePooling1D` (patch tokens)."""
    name = layer.name
    if layer.mode == "cls":
        tokens = layer.input.shape[1]
        if tokens is None:
            raise NotPlainError(
                f"TokenPooling {name!r} takes a token sequence of unknown length "
                f"{tuple(layer.input.shape)}; a built-in `Cropping1D` needs it. Export with "
                "a fixed --image-size."
            )
        return keras.Sequential(
            [
                keras.layers.Cropping1D((0, tokens - 1), name=f"{name}_class_token"),
                keras.layers.Flatten(name=f"{name}_flatten"),
            ],
            name=name,
        )
    return keras.Sequential(
        [
            keras.layers.Cropping1D((layer.num_prefix_tokens, 0), name=f"{name}_patch_tokens"),
            keras.layers.GlobalAveragePooling1D(name=f"{name}_mean"),
        ],
        name=name,
    )


def _affine_preprocessing(layer: ApplicationPreprocessing, assignments):
    """A `Dense(3)` on the channel axis computing `preprocess_input(255 * x)` exactly."""
    basis = np.concatenate([np.zeros((1, 3)), np.eye(3)]).reshape(4, 1, 1, 3).astype("float32")
    mapped = np.asarray(layer(basis)).reshape(4, 3).astype("float64")
    bias, kernel = mapped[0], mapped[1:] - mapped[0]  # out = x @ kernel + bias
    probe = np.random.default_rng(0).random((2, 4, 4, 3)).astype("float32")
    expected = np.asarray(layer(probe)).astype("float64")
    if not np.allclose(probe.astype("float64") @ kernel + bias, expected, atol=1e-4):
        raise NotPlainError(
            f"ApplicationPreprocessing(family={layer.family!r}) is not a per-channel affine "
            "map, so it has no exact Dense equivalent. Export with --format saved_model, "
            "tflite or onnx instead."
        )
    dense = keras.layers.Dense(3, name=layer.name)
    assignments.append((dense, [kernel.astype("float32"), bias.astype("float32")]))
    return dense


def _projection_head(head: ProjectionHead, assignments):
    """The head's stages as a functional model returning `[h, stage_1, ..., projection]`."""
    if not head.stages:
        raise NotPlainError(f"ProjectionHead {head.name!r} has no layers; nothing to export.")
    width = head.stages[0][0].kernel.shape[0]  # the head's input size
    inputs = keras.Input((width,), name=f"{head.name}_input")
    hiddens = [inputs]
    x = inputs
    for stage in head.stages:
        for layer in stage:
            x = _replace(layer, assignments)(x)
        hiddens.append(x)
    return keras.Model(inputs, hiddens, name=head.name)
