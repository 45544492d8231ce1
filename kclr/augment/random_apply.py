"""RandomApply: apply a wrapped augmentation to each image with probability p."""

from __future__ import annotations

import keras
import tensorflow as tf

from kclr.augment.base import AugmentationLayer, as_layer, bernoulli, fold, select, stage_of
from kclr.registry import augmentations


def call_layer(layer, images, seed, device=None):
    """Calls `layer` on a batch, passing a stateless `seed` (and the train step's
    `device`, see `kclr.augment.DeviceBatch`) when it is a kclr layer."""
    if isinstance(layer, AugmentationLayer):
        return layer(images, training=True, seed=seed, device=device)
    return layer(images, training=True)


@augmentations.register("random_apply", description="Apply a layer with probability p")
class RandomApply(AugmentationLayer):
    """Applies `layer` to each image with probability `probability`, per image.

    The layer runs once on the whole batch and the result is selected per image, as
    torchvision's `RandomApply` would choose per sample. The wrapped layer must keep the
    image size.

    Args:
        layer: a Keras layer (or a config dict / registered augmentation name).
        probability: probability per image.
        seed: optional int seed.

    Example:

    ```python
    maybe_blur = kclr.augment.RandomApply(
        kclr.augment.RandomGaussianBlur(probability=1.0), probability=0.5
    )
    ```
    """

    def __init__(self, layer, probability=0.5, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.layer = as_layer(layer)
        self.probability = float(probability)

    @property
    def stage(self):
        """The stage of the wrapped layer."""
        return stage_of(self.layer)

    def get_random_transformation(self, images, seed, device=None):
        return {
            "apply": bernoulli(seed, tf.shape(images)[0], self.probability, device=device),
            "seed": seed,
        }

    def transform_images(self, images, transformation, device=None):
        out = call_layer(self.layer, images, fold(transformation["seed"], 1), device=device)
        return select(transformation["apply"], out, images)

    def get_config(self):
        return {
            **super().get_config(),
            "layer": keras.saving.serialize_keras_object(self.layer),
            "probability": self.probability,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = as_layer(config["layer"])
        return cls(**config)
