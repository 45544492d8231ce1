"""Any keras-hub image backbone as a kclr encoder (images in [0, 1] -> pooled features).

Reference: keras-hub (https://keras.io/keras_hub/), e.g. `keras_hub.models.ViTBackbone`
(Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021). keras-hub is an
optional dependency (`pip install "kclr[keras-hub]"`), imported when an encoder is built.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import keras

from kclr.models.adapters import pool_features, synchronize_batch_norm
from kclr.registry import encoders

INSTALL_HINT = 'pip install "kclr[keras-hub]"'
# Keras's own layer arguments in a backbone's `get_config()`: not architecture.
_LAYER_KEYS = ("name", "dtype", "trainable")


def import_keras_hub(where: str = "encoder {name: keras_hub}"):
    """`keras_hub`, or an ImportError naming the spec that needs it and the install command."""
    try:
        import keras_hub
    except ImportError as error:
        raise ImportError(
            f"The {where} needs the keras-hub package, which is not installed. "
            f"Install it with `{INSTALL_HINT}` (or `pip install keras-hub`)."
        ) from error
    return keras_hub


def backbone_class(class_name: str):
    """The `keras_hub.models` backbone class named `class_name` (e.g. `"ViTBackbone"`)."""
    keras_hub = import_keras_hub(
        f"encoder {{name: keras_hub, config: {{class_name: {class_name}}}}}"
    )
    cls = getattr(keras_hub.models, str(class_name), None)
    if not (inspect.isclass(cls) and issubclass(cls, keras_hub.models.Backbone)):
        names = [n for n in dir(keras_hub.models) if n.endswith("Backbone") and n != "Backbone"]
        raise ValueError(
            f"Unknown keras-hub backbone `encoder.config.class_name={class_name!r}`. Expected "
            f"a class of keras_hub.models, one of: {', '.join(names)}."
        )
    return cls


def prefix_tokens(config: dict[str, Any]) -> int:
    """Tokens before the patch tokens in a ViT-like backbone's output (class + registers)."""
    prefix = 1 if config.get("use_class_token", True) else 0
    return prefix + int(config.get("num_register_tokens", 0) or 0)


@encoders.register("keras_hub", description="A keras-hub backbone (ViT, DINOv2, ResNet, ...)")
class KerasHubEncoder(keras.Model):
    """A keras-hub backbone as a kclr encoder: images -> pooled features.

    The backbone is built from its class and config (`class_name` of
    `keras_hub.models` and the constructor arguments in `config`, Keras's
    `{"class_name", "config"}` form), or from a preset (`preset`: a local folder
    written by `backbone.save_to_preset(folder)`, or a keras-hub preset name, which
    downloads), with `config` then overriding the preset's arguments. Its output is
    pooled the way the family expects:

    - a token sequence `[B, T, D]` (ViT, DeiT, DINOv2): `pooling="cls"` (the default)
      takes the class token, `pooling="mean"` averages the patch tokens (every token
      after the class and register tokens), both after the backbone's final LayerNorm;
    - a feature map `[B, H, W, C]` (ResNet, EfficientNet, ...): global average pooling
      (`pooling="avg"`, the default; or `"max"`).

    The projection head sits on the pooled features, exactly as on a
    `kclr.models.ResNet`. The backbone object is the public attribute `backbone` (e.g.
    for `encoder.backbone.save_to_preset(folder)`), the pooling mode `pooling`.

    Input: kclr feeds RGB in [0, 1]. keras-hub backbones take their images as they come
    (the scaling lives in keras-hub's `ImageConverter`, which kclr does not use), so
    the encoder computes `images * input_scale + input_offset` first (identity by
    default, right for training from scratch). For a pretrained preset, set them to the
    preset's converter on [0, 1] images, e.g. `input_scale: 2.0, input_offset: -1.0`
    for [-1, 1], or per-channel lists for an ImageNet mean/std.

    The image size: a run supplies `data.image_size`; a backbone whose constructor
    takes `image_shape` gets `[image_size, image_size, 3]` unless `config` sets it (a
    different `image_shape` is an error). Leave `image_shape` out of `config`.

    BatchNorm (CNN backbones): keras-hub's own layers, **per replica** under a
    distribution strategy; `sync_bn=True` sets `synchronized=True` on every
    BatchNormalization after building (cross-replica statistics). ViTs use LayerNorm.

    Args:
        class_name: a backbone class of `keras_hub.models`, e.g. `"ViTBackbone"`
            (optional with `preset`: the preset names its class).
        config: the backbone's constructor arguments (with `preset`: overrides).
        preset: a local preset folder (or a keras-hub preset name) to load the
            architecture and weights from. Read once, when building: `get_config`
            records `class_name` and the backbone's whole `config` instead, as the
            weights are then the encoder's own variables, so a saved encoder never
            needs the preset again.
        pooling: `"cls"` or `"mean"` for token outputs; `"avg"` or `"max"` for
            feature maps; `None` for the family default (`"cls"`, `"avg"`).
        input_scale: multiplies the [0, 1] images (a number or one per channel).
        input_offset: added after scaling (a number or one per channel).
        sync_bn: make every BatchNormalization cross-replica.
        image_size: the images' side in pixels; a run supplies `data.image_size`.
        name: model name.

    Returns features of shape `[batch, hidden_dim]` for a ViT, `[batch, channels]` for
    a CNN.

    Example:

    ```python
    encoder = kclr.models.KerasHubEncoder(
        "ViTBackbone",
        {"patch_size": 16, "num_layers": 12, "num_heads": 12, "hidden_dim": 768,
         "mlp_dim": 3072},
        image_size=224,
    )
    features = encoder(images)  # [B, 768], the class token
    ```
    """

    run_arguments = ("image_size",)

    def __init__(
        self,
        class_name: str | None = None,
        config: dict[str, Any] | None = None,
        preset: str | None = None,
        pooling: str | None = None,
        input_scale: float | list[float] = 1.0,
        input_offset: float | list[float] = 0.0,
        sync_bn: bool = False,
        image_size: int | None = None,
        name: str = "keras_hub",
        **kwargs: Any,
    ) -> None:
        if class_name is None and preset is None:
            raise ValueError(
                "encoder {name: keras_hub} needs `class_name` (a keras_hub.models backbone "
                "class, with its `config`) or `preset` (a preset folder or name)."
            )
        backbone = _build_backbone(class_name, dict(config or {}), preset, image_size)
        backbone_config = {k: v for k, v in backbone.get_config().items() if k not in _LAYER_KEYS}
        shape = tuple(backbone_config.get("image_shape") or (None, None, 3))
        if image_size is not None:
            shape = (int(image_size), int(image_size), shape[-1])
        inputs = keras.Input(shape=shape, name="images")
        x = inputs
        if _not_identity(input_scale, 1.0) or _not_identity(input_offset, 0.0):
            x = keras.layers.Rescaling(input_scale, input_offset, name="input_scaling")(x)
        features, pooling = pool_features(
            backbone(x),
            pooling,
            prefix_tokens(backbone_config),
            f"encoder {type(backbone).__name__}",
        )
        super().__init__(inputs=inputs, outputs=features, name=name, **kwargs)
        self.backbone = backbone
        self.class_name = type(backbone).__name__
        self.backbone_config = _plain(backbone_config)
        self.pooling = pooling
        self.input_scale = input_scale
        self.input_offset = input_offset
        self.sync_bn = bool(sync_bn)
        self.image_size = None if image_size is None else int(image_size)
        self.feature_dim = int(features.shape[-1])
        if self.sync_bn:
            synchronize_batch_norm(backbone)

    def get_config(self) -> dict[str, Any]:
        return {
            "class_name": self.class_name,
            "config": copy.deepcopy(self.backbone_config),
            "preset": None,  # the architecture is in `config`, the weights in the variables
            "pooling": self.pooling,
            "input_scale": self.input_scale,
            "input_offset": self.input_offset,
            "sync_bn": self.sync_bn,
            "image_size": self.image_size,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None) -> KerasHubEncoder:
        return cls(**config)


def _build_backbone(class_name, config, preset, image_size):
    """The keras-hub backbone of a spec, its `image_shape` set from the run's image size."""
    if preset is not None:
        keras_hub = import_keras_hub(f"encoder {{name: keras_hub, config: {{preset: {preset}}}}}")
        backbone = keras_hub.models.Backbone.from_preset(preset, **config)
        if class_name is not None and type(backbone).__name__ != class_name:
            raise ValueError(
                f"encoder.config.class_name={class_name!r} but the preset {preset!r} holds a "
                f"{type(backbone).__name__}. Remove `class_name` or fix it."
            )
        _check_image_shape(backbone.get_config().get("image_shape"), image_size, preset)
        return backbone
    cls = backbone_class(class_name)
    if "image_shape" in inspect.signature(cls.__init__).parameters and image_size is not None:
        wanted = [int(image_size), int(image_size), 3]
        given = config.get("image_shape")
        if given is None:
            config["image_shape"] = wanted
        else:
            _check_image_shape(given, image_size, "encoder.config.config")
    try:
        return cls(**config)
    except TypeError as error:
        raise ValueError(
            f"Could not build keras_hub.models.{class_name} from encoder.config.config="
            f"{config}: {error}. The config holds the constructor arguments of {class_name}."
        ) from None


def _check_image_shape(shape, image_size, where) -> None:
    if shape is None or image_size is None or None in tuple(shape)[:2]:
        return
    if tuple(int(s) for s in tuple(shape)[:2]) != (int(image_size), int(image_size)):
        raise ValueError(
            f"The backbone of {where} takes images of {list(shape)} but the run's "
            f"data.image_size is {image_size}. Set `data.image_size` to match, or leave "
            "`image_shape` out of the backbone's config (the run sets it)."
        )


def _not_identity(value, identity: float) -> bool:
    values = value if isinstance(value, (list, tuple)) else [value]
    return any(float(v) != identity for v in values)


def _plain(value):
    """JSON-plain copy of a config (tuples as lists), as a zoo folder writes it."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
