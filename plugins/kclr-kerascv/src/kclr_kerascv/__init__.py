"""KerasCV augmentation layers as kclr augmentations.

KerasCV is imported when a layer is built, not when kclr discovers the plugin, so
`kclr plugins list` works (and names the fix) even where keras-cv is missing.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import keras

__version__ = "0.1.0"
VALUE_RANGE = (0, 1)


def _keras_cv():
    try:
        return importlib.import_module("keras_cv")
    except ImportError as error:
        raise ImportError(
            "kclr-kerascv needs KerasCV: `pip install keras-cv` (received "
            f"{type(error).__name__}: {error})."
        ) from error


@keras.saving.register_keras_serializable(package="kclr_kerascv")
class KerasCVLayer(keras.layers.Layer):
    """Any KerasCV preprocessing layer, by class name, on kclr's [0, 1] images.

    Args:
        class_name: name of a layer in `keras_cv.layers`, e.g. "RandomSharpness".
        seed: passed to the KerasCV layer when it accepts one.
        **layer_kwargs: the KerasCV layer's own arguments.

    Example:

    >>> layer = KerasCVLayer("RandomSharpness", factor=0.5)
    """

    def __init__(
        self,
        class_name: str,
        seed: int | None = None,
        name=None,
        dtype=None,
        trainable=True,
        **layer_kwargs: Any,
    ) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self.class_name = class_name
        self.seed = seed
        self.layer_kwargs = dict(layer_kwargs)
        layers = _keras_cv().layers
        cls = getattr(layers, class_name, None)
        if cls is None or not inspect.isclass(cls):
            raise ValueError(
                f"keras_cv.layers has no layer named {class_name!r}. Check the spelling "
                "(e.g. 'RandomCropAndResize', 'RandomColorJitter')."
            )
        kwargs = dict(layer_kwargs)
        accepted = inspect.signature(cls.__init__).parameters
        if "value_range" in accepted:
            kwargs.setdefault("value_range", VALUE_RANGE)
        if "seed" in accepted and seed is not None:
            kwargs.setdefault("seed", seed)
        self.layer = cls(**kwargs)

    def call(self, images, training=True):
        if not training:
            return images
        out = self.layer(images, training=True)
        return keras.ops.clip(keras.ops.cast(out, "float32"), 0.0, 1.0)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"class_name": self.class_name, "seed": self.seed, **self.layer_kwargs})
        return config


@keras.saving.register_keras_serializable(package="kclr_kerascv")
class RandomCropAndResize(KerasCVLayer):
    """KerasCV's RandomCropAndResize with SimCLR's ranges as defaults (area 0.08-1, aspect 3/4-4/3).

    KerasCV samples area and aspect ratio uniformly; kclr's own `random_resized_crop`
    follows the official SimCLR (Inception-crop) distribution instead.
    """

    def __init__(
        self,
        target_size=(224, 224),
        crop_area_factor=(0.08, 1.0),
        aspect_ratio_factor=(3 / 4, 4 / 3),
        seed=None,
        **kwargs,
    ):
        kwargs.pop("class_name", None)
        super().__init__(
            "RandomCropAndResize",
            seed=seed,
            target_size=tuple(target_size),
            crop_area_factor=tuple(crop_area_factor),
            aspect_ratio_factor=tuple(aspect_ratio_factor),
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        config.pop("class_name")
        return config


@keras.saving.register_keras_serializable(package="kclr_kerascv")
class RandomColorJitter(KerasCVLayer):
    """KerasCV's RandomColorJitter with SimCLR's strength convention (0.8s, 0.8s, 0.8s, 0.2s).

    KerasCV applies the four jitters in a fixed order; the official SimCLR jitter (kclr's
    `color_distortion`) uses a random order and p=0.8.
    """

    def __init__(self, strength: float = 1.0, seed=None, **kwargs):
        kwargs.pop("class_name", None)
        s = float(strength)
        self.strength = s
        super().__init__(
            "RandomColorJitter",
            seed=seed,
            brightness_factor=kwargs.pop("brightness_factor", 0.8 * s),
            contrast_factor=kwargs.pop("contrast_factor", 0.8 * s),
            saturation_factor=kwargs.pop(
                "saturation_factor", (max(0.0, 0.5 - 0.4 * s), min(1.0, 0.5 + 0.4 * s))
            ),
            hue_factor=kwargs.pop("hue_factor", 0.2 * s),
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        config.pop("class_name")
        return {**config, "strength": self.strength}
