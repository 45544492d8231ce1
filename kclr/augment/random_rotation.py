"""RandomRotation: rotate square images by a random multiple of 90 degrees."""

from __future__ import annotations

import tensorflow as tf

from kclr.augment.base import GEOMETRIC, AugmentationLayer, bernoulli, uniform
from kclr.registry import augmentations

_ANGLES = (0, 90, 180, 270)


@augmentations.register(
    "random_rotation", description="Rotate by a random angle in {90, 180, 270} degrees"
)
class RandomRotation(AugmentationLayer):
    """Rotates each image counter-clockwise by an angle drawn uniformly from `angles`.

    The rotation of SimCLR's augmentation-pair study (Chen et al., 2020, Figure 5:
    "rotate {90, 180, 270}"). Multiples of 90 degrees only, so images must be square.
    (Arbitrary angles: `keras.layers.RandomRotation`.)

    Args:
        angles: candidate angles in degrees, each a multiple of 90.
        probability: probability per image that a rotation is applied.
        seed: optional int seed.

    Example:

    ```python
    rotated = kclr.augment.RandomRotation(seed=0)(tf.random.uniform([4, 32, 32, 3]))
    ```
    """

    stage = GEOMETRIC

    def __init__(self, angles=(90, 180, 270), probability=1.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        angles = [int(a) % 360 for a in angles]
        if not angles or any(a not in _ANGLES for a in angles):
            raise ValueError(
                f"RandomRotation: angles must be multiples of 90 degrees; received {angles}."
            )
        self.angles = angles
        self.probability = float(probability)

    def get_random_transformation(self, images, seed, device=None):
        batch = tf.shape(images)[0]
        pick = tf.cast(
            tf.floor(uniform(seed, [batch], salt=1, device=device) * len(self.angles)), tf.int32
        )
        quarter_turns = tf.gather(tf.constant([a // 90 for a in self.angles]), pick)
        return tf.where(
            bernoulli(seed, batch, self.probability, salt=0, device=device), quarter_turns, 0
        )

    def transform_images(self, images, transformation, device=None):
        if images.shape[1] is not None and images.shape[1] != images.shape[2]:
            raise ValueError(
                f"RandomRotation rotates by multiples of 90 degrees and needs square images; "
                f"received shape {images.shape}. Crop to a square first."
            )
        out = images
        for k in (1, 2, 3):
            out = tf.where(
                (transformation == k)[:, None, None, None], tf.image.rot90(images, k), out
            )
        return out

    def get_config(self):
        return {**super().get_config(), "angles": self.angles, "probability": self.probability}
