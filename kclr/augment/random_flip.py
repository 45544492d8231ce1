"""RandomFlip: per-image random horizontal and/or vertical flip."""

from __future__ import annotations

import tensorflow as tf

from kclr.augment.base import GEOMETRIC, AugmentationLayer, bernoulli
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

    stage = GEOMETRIC

    def __init__(self, mode="horizontal", probability=0.5, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if mode not in MODES:
            raise ValueError(f"RandomFlip: unknown mode={mode!r}; expected one of {MODES}.")
        self.mode = mode
        self.probability = float(probability)

    def decode_flips(self, seed, batch_size):
        """The horizontal flips `[batch_size]` bool this layer draws for `seed`, or None.

        The data pipeline flips at decode time with them (a horizontal flip only; other
        modes run as a layer on the decoded views).
        """
        if self.mode != "horizontal":
            return None
        return bernoulli(seed, batch_size, self.probability, salt=0)

    def get_random_transformation(self, images, seed, device=None):
        batch = tf.shape(images)[0]
        return {
            "horizontal": bernoulli(seed, batch, self.probability, salt=0, device=device),
            "vertical": bernoulli(seed, batch, self.probability, salt=1, device=device),
        }

    def transform_images(self, images, transformation, device=None):
        # One gather per axis with per-image index maps (reversed where flipped).
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            images = _flip(images, transformation["horizontal"], axis=2)
        if self.mode in ("vertical", "horizontal_and_vertical"):
            images = _flip(images, transformation["vertical"], axis=1)
        return images

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "probability": self.probability}


def _flip(images, mask, axis):
    size = tf.shape(images)[axis]
    forward = tf.range(size)
    index = tf.where(mask[:, None], tf.reverse(forward, [0])[None], forward[None])  # [B, size]
    out = tf.gather(images, index, axis=axis, batch_dims=1)
    out.set_shape(images.shape)
    return out
