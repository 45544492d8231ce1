"""AugmentationPipeline: a sequence of augmentation layers sharing one seed stream."""

from __future__ import annotations

import keras
import tensorflow as tf

from kclr.augment.base import AugmentationLayer, fold
from kclr.augment.random_apply import _as_layer, call_layer
from kclr.registry import augmentations


@augmentations.register(
    "augmentation_pipeline", description="A sequence of augmentation layers (a recipe)"
)
class AugmentationPipeline(AugmentationLayer):
    """Applies `steps` in order, optionally clipping the result to `[0, 1]`.

    What `kclr.augment.recipes.get_recipe` returns. Each step receives its own stateless
    seed derived from the pipeline's, so one seed fixes the whole recipe. kclr's data
    pipeline reads the first step when it is a crop (`RandomResizedCrop` / `CenterCrop`)
    and runs it at decode time (crop before decode); the other steps run batched.

    Args:
        steps: list of Keras layers (or config dicts / registered names).
        clip: clip the output to `[0, 1]` (the official final `clip_by_value`).
        seed: optional int seed.

    Example:

    ```python
    augmenter = kclr.augment.AugmentationPipeline(
        [kclr.augment.RandomResizedCrop(32), kclr.augment.RandomFlip()], seed=0
    )
    ```
    """

    def __init__(self, steps, clip=True, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.steps = [_as_layer(step) for step in steps]
        self.clip = bool(clip)

    def get_random_transformation(self, images, seed):
        return seed

    def transform_images(self, images, transformation):
        for i, step in enumerate(self.steps):
            images = call_layer(step, images, fold(transformation, i + 1))
        if self.clip:
            images = tf.clip_by_value(images, 0.0, 1.0)
        return images

    def call(self, images, training=None, seed=None):
        if training is not None and not isinstance(training, tf.Tensor) and not training:
            # Deterministic steps (e.g. CenterCrop) still apply at inference.
            for step in self.steps:
                images = step(images, training=False)
            return images
        return super().call(images, training=training, seed=seed)

    def compute_output_shape(self, input_shape):
        for step in self.steps:
            input_shape = step.compute_output_shape(input_shape)
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "steps": [keras.saving.serialize_keras_object(step) for step in self.steps],
            "clip": self.clip,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["steps"] = [_as_layer(step) for step in config["steps"]]
        return cls(**config)
