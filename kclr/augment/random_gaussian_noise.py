"""RandomGaussianNoise: additive Gaussian noise (SimCLR augmentation ablation)."""

from __future__ import annotations

import tensorflow as tf

from kclr.augment.base import AugmentationLayer, bernoulli, normal, uniform
from kclr.registry import augmentations


@augmentations.register("random_gaussian_noise", description="Additive Gaussian noise, clipped")
class RandomGaussianNoise(AugmentationLayer):
    """Adds `N(0, stddev^2)` noise with `stddev ~ U[stddev_range]` per image, then clips.

    One of the operators of SimCLR's augmentation-pair study (Chen et al., 2020, Figure 5).

    Args:
        stddev_range: per-image noise standard deviation range (a single float is a
            fixed standard deviation).
        probability: probability per image.
        seed: optional int seed.

    Example:

    ```python
    noisy = kclr.augment.RandomGaussianNoise((0.0, 0.1))(tf.random.uniform([4, 32, 32, 3]))
    ```
    """

    def __init__(self, stddev_range=(0.0, 0.1), probability=1.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(stddev_range, (int, float)):
            stddev_range = (stddev_range, stddev_range)
        self.stddev_range = tuple(float(s) for s in stddev_range)
        if not 0.0 <= self.stddev_range[0] <= self.stddev_range[1]:
            raise ValueError(
                f"RandomGaussianNoise: stddev_range must satisfy 0 <= low <= high; "
                f"received {stddev_range}."
            )
        self.probability = float(probability)

    def get_random_transformation(self, images, seed, device=None):
        batch = tf.shape(images)[0]
        stddev = uniform(seed, [batch], *self.stddev_range, salt=1, device=device)
        stddev = tf.where(
            bernoulli(seed, batch, self.probability, salt=0, device=device), stddev, 0.0
        )
        noise = normal(seed, tf.shape(images), salt=2, device=device)
        return {"noise": noise * stddev[:, None, None, None]}

    def transform_images(self, images, transformation, device=None):
        return tf.clip_by_value(images + transformation["noise"], 0.0, 1.0)

    def get_config(self):
        return {
            **super().get_config(),
            "stddev_range": list(self.stddev_range),
            "probability": self.probability,
        }
