"""RandomFlip: per-image random horizontal and/or vertical flip."""

from __future__ import annotations

import tensorflow as tf

from kclr.augment.base import AugmentationLayer, bernoulli, select
from kclr.registry import augmentations

MODES = ("horizontal", "vertical", "horizontal_and_vertical")


@augmentations.register("random_flip", description="Random horizontal/vertical flip (p=0.5)")
class RandomFlip(AugmentationLayer):
    """Flips each image left-right (and/or up-down) with probability `probability`.

    SimCLR uses `tf.image.random_flip_left_right` (p=0.5) after the crop.

    Args:
        mode: `"horizontal"`, `"vertical"` or `"horizontal_and_vertical"` (independent draws).
        probability: flip probability per image and direction.
        seed: optional int seed.

    Example:

    ```python
    flipped = kclr.augment.RandomFlip(seed=0)(tf.random.uniform([4, 32, 32, 3]))
    ```
    """

    def __init__(self, mode="horizontal", probability=0.5, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if mode not in MODES:
            raise ValueError(f"RandomFlip: unknown mode={mode!r}; expected one of {MODES}.")
        self.mode = mode
        self.probability = float(probability)

    def get_random_transformation(self, images, seed):
        batch = tf.shape(images)[0]
        return {
            "horizontal": bernoulli(seed, batch, self.probability, salt=0),
            "vertical": bernoulli(seed, batch, self.probability, salt=1),
        }

    def transform_images(self, images, transformation):
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            images = select(transformation["horizontal"], tf.reverse(images, [2]), images)
        if self.mode in ("vertical", "horizontal_and_vertical"):
            images = select(transformation["vertical"], tf.reverse(images, [1]), images)
        return images

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "probability": self.probability}
