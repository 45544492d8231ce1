"""PerView: a different photometric stage for each view of a view-major batch."""

from __future__ import annotations

import keras
import tensorflow as tf

from kclr.augment.base import AugmentationLayer, DeviceBatch, as_layer, fold
from kclr.augment.random_apply import call_layer
from kclr.registry import augmentations


@augmentations.register(
    "per_view", description="One photometric stage per view of a view-major batch"
)
class PerView(AugmentationLayer):
    """Applies `stages[v]` to the images of view `v` of a view-major batch `[V*B, H, W, 3]`.

    The photometric stage of an asymmetric recipe (one recipe per view, e.g. BYOL's blur
    1.0 / 0.1 and solarize 0 / 0.2; see `kclr.augment.MultiView` and the `byol` recipe).
    Every place a photometric stage runs holds the views view-major: the views of one
    file `[V, S, S, 3]` in `tf.data` (`B = 1`) and the local batch `[V*B, S, S, 3]` of a
    replica in the train step, so view `v` is the `v`-th of `V` equal blocks of rows.
    Each stage draws with its own seed, and in the train step (`device`, see
    `kclr.augment.DeviceBatch`) for the same global rows as on a single device.

    Args:
        stages: one layer per view.
        seed: optional int seed.

    Example:

    ```python
    from kclr.augment import PerView, RandomGaussianBlur

    stage = PerView([RandomGaussianBlur(probability=1.0), RandomGaussianBlur(probability=0.1)])
    out = stage(tf.random.uniform([2 * 8, 32, 32, 3]), training=True)  # views 0 then 1
    ```
    """

    def __init__(self, stages, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.stages = [as_layer(stage) for stage in stages]
        if len(self.stages) < 2:
            raise ValueError(
                f"PerView: received {len(self.stages)} stage(s); it needs one per view (at "
                "least 2). A single stage applies to every view as it is."
            )

    @property
    def views(self) -> int:
        return len(self.stages)

    def get_random_transformation(self, images, seed, device=None):
        return seed

    def transform_images(self, images, transformation, device=None):
        blocks = tf.split(images, self.views, axis=0)
        parts = [None] * self.views
        if device is not None:
            # The whole batch is rows 0..n-1 of itself: stage v then draws for the same
            # global rows whether the batch is whole or split over replicas.
            rows = device.rows
            total = device.total
            if rows is None:
                rows, total = tf.range(tf.shape(images)[0]), tf.shape(images)[0]
            parts = [DeviceBatch(r, total) for r in tf.split(rows, self.views, axis=0)]
        out = [
            call_layer(stage, block, fold(transformation, v + 1), device=part)
            for v, (stage, block, part) in enumerate(zip(self.stages, blocks, parts, strict=True))
        ]
        return tf.concat(out, axis=0)

    def call(self, images, training=None, seed=None, device=None):
        if training is not None and not isinstance(training, tf.Tensor) and not training:
            blocks = tf.split(images, self.views, axis=0)
            return tf.concat(
                [s(b, training=False) for s, b in zip(self.stages, blocks, strict=True)], 0
            )
        return super().call(images, training=training, seed=seed, device=device)

    def get_config(self):
        return {
            **super().get_config(),
            "stages": [keras.saving.serialize_keras_object(s) for s in self.stages],
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["stages"] = [as_layer(s) for s in config["stages"]]
        return cls(**config)
