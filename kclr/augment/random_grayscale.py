"""RandomGrayscale: convert images to grayscale (tiled to 3 channels) with probability p."""

from __future__ import annotations

import tensorflow as tf

from kclr.augment import functional
from kclr.augment.base import AugmentationLayer, apply_where, bernoulli
from kclr.registry import augmentations


@augmentations.register("random_grayscale", description="Random grayscale (p=0.2)")
class RandomGrayscale(AugmentationLayer):
    """Converts each image to grayscale with probability `probability`.

    SimCLR's `to_grayscale` (p=0.2, `tf.image.rgb_to_grayscale` weights tiled to 3
    channels), applied after the colour jitter whether or not the jitter fired.

    Args:
        probability: probability per image.
        seed: optional int seed.

    Example:

    ```python
    gray = kclr.augment.RandomGrayscale(probability=0.2)(tf.random.uniform([4, 32, 32, 3]))
    ```
    """

    def __init__(self, probability=0.2, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.probability = float(probability)

    def get_random_transformation(self, images, seed, device=None):
        return bernoulli(seed, tf.shape(images)[0], self.probability, device=device)

    def transform_images(self, images, transformation, device=None):
        return apply_where(transformation, functional.grayscale, images, device=device)

    def get_config(self):
        return {**super().get_config(), "probability": self.probability}
