"""Layers and helpers that fit third-party backbones to kclr's encoder contract.

A kclr encoder maps images, RGB in [0, 1], to pooled features `[batch, feature_dim]`
(`kclr.models.ResNet`). A keras-hub or Keras Applications backbone returns a feature
map `[batch, H, W, C]` (CNNs) or a token sequence `[batch, tokens, D]` (ViTs) and
expects its own input range; the layers here close the gap without a `Lambda`
layer, so that the encoders stay serializable and zoo folders execute no code.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

FEATURE_MAP_POOLING = ("avg", "max")
TOKEN_POOLING = ("cls", "mean")


@keras.saving.register_keras_serializable(package="kclr")
class TokenPooling(keras.layers.Layer):
    """Pools a ViT token sequence `[batch, tokens, dim]` into features `[batch, dim]`.

    Args:
        mode: `"cls"`, the first token (the class token); or `"mean"`, the mean of the
            patch tokens, i.e. of every token after the first `num_prefix_tokens`.
        num_prefix_tokens: the tokens before the patch tokens (the class token and any
            register tokens); left out of the mean.

    Example:

    ```python
    tokens = backbone(images)  # [B, 1 + N, D]
    features = kclr.models.TokenPooling("mean")(tokens)  # [B, D]
    ```
    """

    def __init__(self, mode: str = "cls", num_prefix_tokens: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in TOKEN_POOLING:
            raise ValueError(f"Unknown token pooling {mode!r}; expected one of {TOKEN_POOLING}.")
        if mode == "cls" and num_prefix_tokens < 1:
            raise ValueError(
                "pooling='cls' needs a class token, but the backbone has none "
                f"(num_prefix_tokens={num_prefix_tokens}). Use pooling='mean'."
            )
        self.mode = mode
        self.num_prefix_tokens = int(num_prefix_tokens)

    def call(self, tokens):
        if self.mode == "cls":
            return tokens[:, 0, :]
        return ops.mean(tokens[:, self.num_prefix_tokens :, :], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "mode": self.mode,
            "num_prefix_tokens": self.num_prefix_tokens,
        }


@keras.saving.register_keras_serializable(package="kclr")
class ApplicationPreprocessing(keras.layers.Layer):
    """Maps kclr's images in [0, 1] to the input of a Keras Applications family.

    Computes `keras.applications.<family>.preprocess_input(255 * images)`: the range
    and normalisation the family's ImageNet weights were trained with (`"caffe"` BGR
    mean subtraction for `resnet` and `vgg16`, [-1, 1] for `mobilenet_v2`, ...; the
    identity for families that normalise inside the model, such as `efficientnet_v2`
    and `convnext`, whose models then see [0, 255] as their `include_preprocessing`
    expects).

    Args:
        family: the module of `keras.applications` the model comes from, e.g.
            `"efficientnet_v2"` for `keras.applications.EfficientNetV2B0`.
    """

    def __init__(self, family: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        module = getattr(keras.applications, family, None)
        if module is None or not hasattr(module, "preprocess_input"):
            raise ValueError(
                f"keras.applications has no family {family!r} with a `preprocess_input`."
            )
        self.family = family
        self._preprocess = module.preprocess_input

    def call(self, images):
        return self._preprocess(images * ops.cast(255.0, images.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "family": self.family}


def pool_features(outputs, pooling: str | None, num_prefix_tokens: int, where: str):
    """Pooled features of a backbone's symbolic output and the pooling mode used.

    A feature map `[B, H, W, C]` is pooled globally (`"avg"`, the default, or
    `"max"`); a token sequence `[B, T, D]` by `TokenPooling` (`"cls"`, the default
    when there is a class token, or `"mean"`).
    """
    if isinstance(outputs, (dict, list, tuple)):
        raise ValueError(
            f"{where}: the backbone returns several outputs ({type(outputs).__name__}); kclr "
            "needs one feature map [B, H, W, C] or one token sequence [B, T, D]."
        )
    rank = len(outputs.shape)
    if rank == 4:
        pooling = pooling or "avg"
        if pooling not in FEATURE_MAP_POOLING:
            raise ValueError(
                f"{where}: pooling={pooling!r} does not apply to a feature map [B, H, W, C]; "
                f"expected one of {FEATURE_MAP_POOLING}."
            )
        layer = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D}
        return layer[pooling](name=f"final_{pooling}_pool")(outputs), pooling
    if rank == 3:
        pooling = pooling or ("cls" if num_prefix_tokens > 0 else "mean")
        if pooling not in TOKEN_POOLING:
            raise ValueError(
                f"{where}: pooling={pooling!r} does not apply to a token sequence [B, T, D]; "
                f"expected one of {TOKEN_POOLING}."
            )
        return TokenPooling(pooling, num_prefix_tokens, name="token_pool")(outputs), pooling
    raise ValueError(
        f"{where}: the backbone's output has shape {tuple(outputs.shape)}; kclr pools a "
        "feature map [B, H, W, C] or a token sequence [B, T, D]."
    )


def batch_norm_layers(model) -> list:
    """Every `keras.layers.BatchNormalization` in `model`, nested models and layers included."""
    # Keras has no public recursive walk over sublayers; `_flatten_layers` is the one
    # `Model.layers` and `Layer.weights` use themselves.
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def synchronize_batch_norm(model) -> int:
    """Sets `synchronized=True` on every BatchNormalization of `model`; returns how many.

    Keras reads the flag when the layer is called, so flipping it after building
    makes the batch statistics cross-replica under a `tf.distribute` strategy.
    """
    layers = batch_norm_layers(model)
    for layer in layers:
        layer.synchronized = True
    return len(layers)
