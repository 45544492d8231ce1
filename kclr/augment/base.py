"""Kclr's public base class for batched, seedable augmentation layers."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


class AugmentationLayer(keras.layers.Layer):
    """Base class of kclr's augmentation layers: per-image parameters, batched application.

    A subclass implements two steps, as Keras's own image preprocessing layers do:

    1. `get_random_transformation(images, seed)` draws the random parameters of every
       image of the batch in one batched call of stateless random ops;
    2. `transform_images(images, transformation)` applies them with batched tensor ops
       (no per-image Python, no per-image `map`).

    Layers take `[B, H, W, 3]` (or a single `[H, W, 3]` image) float32 RGB in `[0, 1]`;
    integer images are converted with `tf.image.convert_image_dtype`. `training=False`
    returns the input unchanged (except for deterministic layers such as `CenterCrop`,
    which set `always_apply = True`).

    Randomness: every call draws a fresh stateless seed from a `tf.random.Generator`
    seeded with `seed` (non-deterministic when `seed=None`), so two layers built with the
    same seed give the same sequence of outputs, inside `tf.data` or inside a model. A
    caller may also pass `seed=` (an int tensor of shape `[2]`) to `call` to fix the
    randomness of that one call; kclr's data pipeline does that with a per-batch counter
    so that `deterministic=True` runs are reproducible.

    Args:
        seed: optional int, seed of the layer's random generator.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:

    ```python
    class RandomInvert(kclr.augment.AugmentationLayer):
        def __init__(self, probability=0.5, **kwargs):
            super().__init__(**kwargs)
            self.probability = probability

        def get_random_transformation(self, images, seed):
            batch = tf.shape(images)[0]
            return {"apply": tf.random.stateless_uniform([batch], seed) < self.probability}

        def transform_images(self, images, transformation):
            return tf.where(transformation["apply"][:, None, None, None], 1.0 - images, images)

        def get_config(self):
            return {**super().get_config(), "probability": self.probability}
    ```
    """

    #: Apply the layer even when `training=False` (deterministic layers, e.g. `CenterCrop`).
    always_apply = False

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        with tf.init_scope():
            if seed is None:
                self._rng = tf.random.Generator.from_non_deterministic_state()
            else:
                self._rng = tf.random.Generator.from_seed(int(seed))

    # ------------------------------------------------------------- subclass API
    def get_random_transformation(self, images: tf.Tensor, seed: tf.Tensor) -> Any:
        """Draws the random parameters of the whole batch from the stateless `seed`."""
        return None

    def transform_images(self, images: tf.Tensor, transformation: Any) -> tf.Tensor:
        """Applies `transformation` to the batch `images` `[B, H, W, 3]`."""
        raise NotImplementedError(f"{type(self).__name__} must implement `transform_images`.")

    # ---------------------------------------------------------------- machinery
    def next_seed(self) -> tf.Tensor:
        """A fresh stateless seed (int64 `[2]`) from the layer's generator."""
        return self._rng.make_seeds(1)[:, 0]

    def call(self, images, training=None, seed=None):
        if training is not None and not isinstance(training, tf.Tensor) and not training:
            if not self.always_apply:
                return images
        images = tf.convert_to_tensor(images)
        if images.dtype.is_integer:
            images = tf.image.convert_image_dtype(images, tf.float32)
        elif images.dtype != tf.float32:
            images = tf.cast(images, tf.float32)
        unbatched = images.shape.rank == 3
        if unbatched:
            images = images[None]
        if images.shape.rank != 4:
            raise ValueError(
                f"{type(self).__name__} expects images of shape [batch, height, width, "
                f"channels] or [height, width, channels]; received shape {images.shape}. "
                "Reshape the input (a batch of views [B, V, H, W, 3] goes through "
                "`kclr.augment.MultiView`)."
            )
        seed = self.next_seed() if seed is None else tf.cast(seed, tf.int64)
        transformation = self.get_random_transformation(images, seed)
        outputs = self.transform_images(images, transformation)
        return outputs[0] if unbatched else outputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


#: Static batches up to this size (the views of one file) are transformed image by image.
SMALL_BATCH = 4


def uniform(seed: tf.Tensor, shape, minval=0.0, maxval=1.0, salt: int = 0) -> tf.Tensor:
    """`tf.random.stateless_uniform` with a salt folded into `seed` (one stream per use)."""
    seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), salt)
    return tf.random.stateless_uniform(shape, seed, minval=minval, maxval=maxval)


def bernoulli(seed: tf.Tensor, batch_size, probability: float, salt: int = 0) -> tf.Tensor:
    """A boolean `[batch_size]` mask that is True with `probability` per image."""
    return uniform(seed, [batch_size], salt=salt) < probability


def fold(seed: tf.Tensor, salt: int) -> tf.Tensor:
    """A new stateless seed derived from `seed` and an integer `salt`."""
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), salt)


def select(mask: tf.Tensor, if_true: tf.Tensor, if_false: tf.Tensor) -> tf.Tensor:
    """Per-image choice between two batches of images, `mask` is `[B]` bool.

    Written as `a * m + b * (1 - m)` (exact for m in {0, 1}): broadcasting `tf.where` is
    several times slower on CPU.
    """
    m = tf.cast(mask, if_true.dtype)[:, None, None, None]
    return if_true * m + if_false * (1.0 - m)


def apply_where(mask: tf.Tensor, fn, images: tf.Tensor, *params: tf.Tensor) -> tf.Tensor:
    """Applies `fn(images[mask], *params[mask])` to the selected images only.

    The batch is split with `tf.dynamic_partition` and put back with
    `tf.dynamic_stitch`, so an op applied with probability p costs p of the batch. A
    small static batch (the views of one file in tf.data) uses one `tf.cond` per image
    instead, which copies nothing for the images left alone.
    """
    batch = images.shape[0]
    if batch is not None and batch <= SMALL_BATCH:
        outputs = []
        for j in range(batch):
            image = images[j : j + 1]
            image_params = [p[j : j + 1] for p in params]
            outputs.append(
                tf.cond(
                    mask[j],
                    lambda image=image, image_params=image_params: fn(image, *image_params),
                    lambda image=image: image,
                )
            )
        out = outputs[0] if batch == 1 else tf.concat(outputs, axis=0)
        out.set_shape(images.shape)
        return out
    ids = tf.cast(mask, tf.int32)
    indices = tf.dynamic_partition(tf.range(tf.shape(images)[0]), ids, 2)
    keep, take = tf.dynamic_partition(images, ids, 2)
    taken_params = [tf.dynamic_partition(p, ids, 2)[1] for p in params]
    out = tf.dynamic_stitch(indices, [keep, fn(take, *taken_params)])
    out.set_shape(images.shape)
    return out
