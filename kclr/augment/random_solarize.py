"""RandomSolarize: invert pixels above a threshold with probability p."""

from __future__ import annotations

import tensorflow as tf

from kclr.augment.base import AugmentationLayer, apply_where, bernoulli
from kclr.registry import augmentations


@augmentations.register("random_solarize", description="Random solarize (x >= t -> 1 - x)")
class RandomSolarize(AugmentationLayer):
    """Solarizes each image (`x -> 1 - x` where `x >= threshold`) with probability `probability`.

    Not part of SimCLR; the BYOL recipe uses it (p=0.2 on one view, threshold 0.5).

    Args:
        threshold: pixel values at or above it are inverted.
        probability: probability per image.
        seed: optional int seed.

    Example:

    ```python
    out = kclr.augment.RandomSolarize(probability=1.0)(tf.random.uniform([4, 32, 32, 3]))
    ```
    """

    def __init__(self, threshold=0.5, probability=0.2, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.threshold = float(threshold)
        self.probability = float(probability)

    def get_random_transformation(self, images, seed, device=None):
        return bernoulli(seed, tf.shape(images)[0], self.probability, device=device)

    def transform_images(self, images, transformation, device=None):
        def solarize(selected):
            return tf.where(selected >= self.threshold, 1.0 - selected, selected)

        return apply_where(transformation, solarize, images, device=device)

    def get_config(self):
        return {
            **super().get_config(),
            "threshold": self.threshold,
            "probability": self.probability,
        }
