"""RandomCutout: mask a random square of each image (SimCLR augmentation ablation)."""

from __future__ import annotations

import tensorflow as tf

from kclr.augment.base import AugmentationLayer, bernoulli, uniform
from kclr.registry import augmentations


@augmentations.register("random_cutout", description="Cutout: mask a random square per image")
class RandomCutout(AugmentationLayer):
    """Masks a square of side `size * min(H, W)` at a uniformly random centre.

    Cutout (DeVries & Taylor, 2017), one of the operators of SimCLR's augmentation-pair
    study (Chen et al., 2020, Figure 5). The square may extend past the border (as in
    DeVries & Taylor); masked pixels take `fill_value`.

    Args:
        size: side of the square as a fraction of the shorter image side.
        fill_value: value of masked pixels.
        probability: probability per image.
        seed: optional int seed.

    Example:

    ```python
    out = kclr.augment.RandomCutout(size=0.5, seed=0)(tf.random.uniform([4, 32, 32, 3]))
    ```
    """

    def __init__(self, size=0.5, fill_value=0.0, probability=1.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not 0.0 < size <= 1.0:
            raise ValueError(f"RandomCutout: size must be in (0, 1]; received {size}.")
        self.size = float(size)
        self.fill_value = float(fill_value)
        self.probability = float(probability)

    def get_random_transformation(self, images, seed, device=None):
        shape = tf.shape(images)
        batch = shape[0]
        height = tf.cast(shape[1], tf.float32)
        width = tf.cast(shape[2], tf.float32)
        return {
            "cy": tf.floor(uniform(seed, [batch], salt=1, device=device) * height),
            "cx": tf.floor(uniform(seed, [batch], salt=2, device=device) * width),
            "apply": bernoulli(seed, batch, self.probability, salt=0, device=device),
        }

    def transform_images(self, images, transformation, device=None):
        shape = tf.shape(images)
        height = tf.cast(shape[1], tf.float32)
        width = tf.cast(shape[2], tf.float32)
        side = tf.round(self.size * tf.minimum(height, width))
        y0 = transformation["cy"] - tf.floor(side / 2.0)
        x0 = transformation["cx"] - tf.floor(side / 2.0)
        rows = tf.range(height)[None, :]
        cols = tf.range(width)[None, :]
        in_rows = (rows >= y0[:, None]) & (rows < (y0 + side)[:, None])  # [B, H]
        in_cols = (cols >= x0[:, None]) & (cols < (x0 + side)[:, None])  # [B, W]
        mask = in_rows[:, :, None] & in_cols[:, None, :] & transformation["apply"][:, None, None]
        return tf.where(mask[..., None], tf.cast(self.fill_value, images.dtype), images)

    def get_config(self):
        return {
            **super().get_config(),
            "size": self.size,
            "fill_value": self.fill_value,
            "probability": self.probability,
        }
