"""Any `keras.applications` model as a kclr encoder (images in [0, 1] -> pooled features).

Reference: the Keras Applications (`keras.applications`, https://keras.io/api/applications/).
"""

from __future__ import annotations

import inspect
from typing import Any

import keras

from kclr.models.adapters import ApplicationPreprocessing, pool_features, synchronize_batch_norm
from kclr.registry import encoders


def application(model: str):
    """The `keras.applications` constructor named `model` (e.g. `"EfficientNetV2B0"`)."""
    function = getattr(keras.applications, str(model), None)
    if not callable(function) or not str(model)[:1].isupper():
        names = [n for n in dir(keras.applications) if n[:1].isupper()]
        raise ValueError(
            f"Unknown Keras Applications model `encoder.config.model={model!r}`. Expected one "
            f"of: {', '.join(names)}."
        )
    return function


@encoders.register(
    "keras_applications", description="A keras.applications model (EfficientNetV2, ConvNeXt, ...)"
)
class KerasApplicationsEncoder(keras.Model):
    """A `keras.applications` model as a kclr encoder: images -> pooled features.

    The model is built with `include_top=False` and `weights=None` (random
    initialisation; or a local weights file, or `"imagenet"` to download Keras's), its
    input shape from the run's `data.image_size`, and its feature map is pooled
    globally (`pooling="avg"`, as the ResNet encoders; `"max"` also works). The
    projection head sits on the pooled features, exactly as on a `kclr.models.ResNet`.

    Input: kclr's pipeline feeds RGB in [0, 1]. With `preprocessing=True` (the default)
    the encoder maps them to what the model's ImageNet weights expect: it multiplies
    by 255 and applies `keras.applications.<family>.preprocess_input` (caffe-style for
    ResNet and VGG, [-1, 1] for MobileNetV2, ...; the identity for EfficientNet(V2),
    ConvNeXt and RegNet, whose own `include_preprocessing` layers take [0, 255]). With
    `preprocessing=False` the model sees [0, 1] as it is, and models with an
    `include_preprocessing` argument are built with `include_preprocessing=False`.

    BatchNorm: the model keeps Keras's own `BatchNormalization` layers, which are
    **per replica** under a distribution strategy (unlike kclr's ResNets). With
    `sync_bn=True`, every BatchNormalization of the model is set to
    `synchronized=True` after building (cross-replica statistics, the SimCLR
    authors' global BN); on a single replica Keras then computes the variance as
    `E[x^2] - E[x]^2`, which costs a little more than the per-replica path.

    Args:
        model: the `keras.applications` constructor, e.g. `"EfficientNetV2B0"`,
            `"ConvNeXtTiny"`, `"ResNet50V2"`, `"MobileNetV2"`.
        weights: `None` (random), a path to a local weights file of the model without
            its top, or `"imagenet"` (downloads). Read once, when building: `get_config`
            records `None`, as the weights are then the encoder's own variables (saved
            by a zoo folder, a checkpoint or `save_weights`), so a saved config never
            re-reads or downloads a file.
        pooling: `"avg"` (global average pooling) or `"max"`.
        preprocessing: map [0, 1] images to the model's expected input (see above).
        sync_bn: make every BatchNormalization cross-replica.
        image_size: the images' side in pixels; a run supplies `data.image_size`.
            `None` builds the model for any size.
        model_arguments: further keyword arguments of the constructor (`alpha`,
            `minimalistic`, ...); `include_top`, `input_shape` and `pooling` are set
            by the encoder.
        name: model name.

    Returns features of shape `[batch, channels]` (1280 for EfficientNetV2B0).

    Example:

    ```python
    encoder = kclr.models.KerasApplicationsEncoder("EfficientNetV2B0", image_size=224)
    features = encoder(images)  # images in [0, 1]; features [B, 1280]
    ```
    """

    run_arguments = ("image_size",)

    def __init__(
        self,
        model: str,
        weights: str | None = None,
        pooling: str = "avg",
        preprocessing: bool = True,
        sync_bn: bool = False,
        image_size: int | None = None,
        model_arguments: dict[str, Any] | None = None,
        name: str = "keras_applications",
        **kwargs: Any,
    ) -> None:
        function = application(model)
        model_arguments = dict(model_arguments or {})
        taken = sorted(
            {"include_top", "input_shape", "input_tensor", "pooling"} & set(model_arguments)
        )
        if taken:
            raise ValueError(
                f"`encoder.config.model_arguments` may not set {taken}: the encoder sets them "
                "(`include_top=False`, the run's image size, `pooling`)."
            )
        accepted = set(inspect.signature(function).parameters)
        if not preprocessing and "include_preprocessing" in accepted:
            model_arguments.setdefault("include_preprocessing", False)
        side = None if image_size is None else int(image_size)
        shape = (side, side, 3)
        inputs = keras.Input(shape=shape, name="images")
        backbone = function(
            include_top=False, weights=weights, input_shape=shape, **model_arguments
        )
        x = inputs
        if preprocessing:
            family = function.__module__.rpartition(".")[2]
            x = ApplicationPreprocessing(family, name="application_preprocessing")(x)
        features, pooling = pool_features(backbone(x), pooling, 0, f"encoder {model!r}")
        super().__init__(inputs=inputs, outputs=features, name=name, **kwargs)
        self.backbone = backbone
        self.model = str(model)
        self.pooling = pooling
        self.preprocessing = bool(preprocessing)
        self.sync_bn = bool(sync_bn)
        self.image_size = side
        self.model_arguments = dict(model_arguments)
        self.feature_dim = int(features.shape[-1])
        if self.sync_bn:
            synchronize_batch_norm(backbone)

    def get_config(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "weights": None,  # the weights are the encoder's variables (zoo, checkpoint)
            "pooling": self.pooling,
            "preprocessing": self.preprocessing,
            "sync_bn": self.sync_bn,
            "image_size": self.image_size,
            "model_arguments": self.model_arguments,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None) -> KerasApplicationsEncoder:
        return cls(**config)
