"""SobelFilter: replace images by their Sobel edge magnitude (SimCLR augmentation ablation)."""

from __future__ import annotations

import tensorflow as tf

from kclr.augment import functional
from kclr.augment.base import AugmentationLayer, apply_where, bernoulli
from kclr.registry import augmentations


@augmentations.register("sobel_filter", description="Sobel edge magnitude (grayscale, 3 channels)")
class SobelFilter(AugmentationLayer):
    """Replaces each image by the Sobel gradient magnitude of its grayscale version.

    One of the operators of SimCLR's augmentation-pair study (Chen et al., 2020,
    Figure 5). The magnitude `sqrt(gx^2 + gy^2)` of `tf.image.sobel_edges` (reflect
    padding) is divided by its per-image maximum so the result lies in `[0, 1]`, and is
    tiled to 3 channels.

    Args:
        probability: probability per image (1.0 in the ablation).
        seed: optional int seed.

    Example:

    ```python
    edges = kclr.augment.SobelFilter()(tf.random.uniform([4, 32, 32, 3]))
    ```
    """

    def __init__(self, probability=1.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.probability = float(probability)

    def get_random_transformation(self, images, seed, device=None):
        return bernoulli(seed, tf.shape(images)[0], self.probability, device=device)

    def transform_images(self, images, transformation, device=None):
        return apply_where(transformation, _sobel, images, device=device)

    def get_config(self):
        return {**super().get_config(), "probability": self.probability}


def _sobel(images):
    gray = functional.grayscale(images)[..., :1]
    edges = tf.image.sobel_edges(gray)  # [B, H, W, 1, 2]
    magnitude = tf.sqrt(tf.reduce_sum(tf.square(edges), axis=-1))
    peak = tf.reduce_max(magnitude, axis=[1, 2, 3], keepdims=True)
    magnitude = magnitude / tf.maximum(peak, 1e-12)
    return tf.repeat(magnitude, 3, axis=-1)
