"""RandomChoice: apply one of several augmentations, chosen per image."""

from __future__ import annotations

import keras
import tensorflow as tf

from kclr.augment.base import (
    GEOMETRIC,
    PHOTOMETRIC,
    AugmentationLayer,
    as_layer,
    fold,
    select,
    stage_of,
    uniform,
)
from kclr.augment.random_apply import call_layer
from kclr.registry import augmentations


@augmentations.register("random_choice", description="Apply one of several layers per image")
class RandomChoice(AugmentationLayer):
    """Applies one of `layers` to each image, chosen per image with `probabilities`.

    The batch is partitioned by the chosen layer, each layer runs once on its part, and
    the parts are stitched back (each image is transformed exactly once). Every layer
    must map an image to the same shape.

    Args:
        layers: list of Keras layers (or config dicts / registered names).
        probabilities: selection probabilities (uniform when `None`).
        seed: optional int seed.

    Example:

    ```python
    choice = kclr.augment.RandomChoice(
        [kclr.augment.RandomGrayscale(1.0), kclr.augment.RandomSolarize(probability=1.0)]
    )
    ```
    """

    def __init__(self, layers, probabilities=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.choices = [as_layer(layer) for layer in layers]
        if not self.choices:
            raise ValueError("RandomChoice needs at least one layer; received an empty list.")
        if probabilities is None:
            probabilities = [1.0 / len(self.choices)] * len(self.choices)
        probabilities = [float(p) for p in probabilities]
        if len(probabilities) != len(self.choices) or min(probabilities) < 0:
            raise ValueError(
                f"RandomChoice: expected {len(self.choices)} non-negative probabilities, "
                f"received {probabilities}."
            )
        total = sum(probabilities)
        self.probabilities = [p / total for p in probabilities]

    def get_random_transformation(self, images, seed, device=None):
        batch = tf.shape(images)[0]
        edges = tf.constant(self.probabilities, tf.float32)
        edges = tf.math.cumsum(edges)[:-1]
        u = uniform(seed, [batch], device=device)
        choice = tf.reduce_sum(tf.cast(u[:, None] >= edges[None, :], tf.int32), axis=1)
        return {"choice": choice, "seed": seed}

    @property
    def stage(self):
        """Geometric when every choice is geometric, else photometric."""
        stages = {stage_of(layer) for layer in self.choices}
        return GEOMETRIC if stages == {GEOMETRIC} else PHOTOMETRIC

    def transform_images(self, images, transformation, device=None):
        choice = transformation["choice"]
        n = len(self.choices)
        if device is not None:
            # Static shapes: every choice on the whole batch, selected per image.
            out = images
            for i, layer in enumerate(self.choices):
                chosen = call_layer(
                    layer, images, fold(transformation["seed"], i + 1), device=device
                )
                out = select(tf.equal(choice, i), chosen, out)
            return out
        indices = tf.range(tf.shape(images)[0])
        parts = tf.dynamic_partition(images, choice, n)
        part_indices = tf.dynamic_partition(indices, choice, n)
        outputs = [
            call_layer(layer, part, fold(transformation["seed"], i + 1), device=device)
            for i, (layer, part) in enumerate(zip(self.choices, parts, strict=True))
        ]
        out = tf.dynamic_stitch(part_indices, outputs)
        out.set_shape(images.shape)
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "layers": [keras.saving.serialize_keras_object(layer) for layer in self.choices],
            "probabilities": self.probabilities,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layers"] = [as_layer(layer) for layer in config["layers"]]
        return cls(**config)
