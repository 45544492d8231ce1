"""Kclr's public base class for batched, seedable augmentation layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from kclr.registry import augmentations

#: Stage names: geometric layers (crop, flip) run on the host at decode time on uint8;
#: photometric layers (colour, grayscale, blur, solarize, plugins) run on the host or on
#: the accelerator, see `kclr.data.pretraining_dataset(photometric=...)`.
GEOMETRIC = "geometric"
PHOTOMETRIC = "photometric"
STAGES = (GEOMETRIC, PHOTOMETRIC)
#: Stateless RNG algorithm, fixed so that a seed gives the same numbers on CPU and GPU
#: (the default "auto_select" may pick a different algorithm per device). XLA expands
#: the same algorithm into a different, equally reproducible stream.
RNG_ALG = "philox"
#: The values a photometric layer may receive: `[0, 1]` widened by the overshoot of a
#: bicubic resize (Keys cubic, a = -0.5, no antialias: the 2-D weights' negative lobes
#: sum to -0.28125). A recipe's crop resizes bicubically and, as in the authors' code,
#: nothing clips until `ColorDistortion` (after each of its ops) and the recipe's final
#: clip. On photos the overshoot is far smaller (about -0.02..1.11 on CIFAR-sized crops).
PHOTOMETRIC_INPUT_RANGE = (-0.28125, 1.28125)


class AugmentationLayer(keras.layers.Layer):
    """Base class of kclr's augmentation layers: per-image parameters, batched application.

    A subclass implements two steps, as Keras's own image preprocessing layers do:

    1. `get_random_transformation(images, seed)` draws the random parameters of every
       image of the batch in one batched call of stateless random ops;
    2. `transform_images(images, transformation)` applies them with batched tensor ops
       (no per-image Python, no per-image `map`).

    Layers take `[B, H, W, 3]` (or a single `[H, W, 3]` image) float32 RGB in `[0, 1]`;
    integer images are converted with `tf.image.convert_image_dtype`. A photometric
    layer in a recipe may receive values up to 0.28125 outside `[0, 1]`
    (`PHOTOMETRIC_INPUT_RANGE`: the bicubic crop's overshoot, kept as the authors keep
    it); it need not clip, the recipe clips at its end. `training=False`
    returns the input unchanged (except for deterministic layers such as `CenterCrop`,
    which set `always_apply = True`).

    Stage: the class attribute `stage` says where the layer runs in a pretraining
    recipe: `"geometric"` layers (crops, flips) change where pixels come from and run on
    the host at decode time, on uint8; `"photometric"` layers (the default, and the
    default of any plugin layer) change pixel values and run on the host or on the
    accelerator inside the train step (`kclr.data.pretraining_dataset(photometric=...)`).

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

        def get_random_transformation(self, images, seed, device=None):
            batch = tf.shape(images)[0]
            return {"apply": kclr.augment.bernoulli(seed, batch, self.probability, device=device)}

        def transform_images(self, images, transformation, device=None):
            return tf.where(transformation["apply"][:, None, None, None], 1.0 - images, images)

        def get_config(self):
            return {**super().get_config(), "probability": self.probability}
    ```
    """

    #: Apply the layer even when `training=False` (deterministic layers, e.g. `CenterCrop`).
    always_apply = False
    #: Where the layer runs in a recipe: `"geometric"` or `"photometric"` (see above).
    stage = PHOTOMETRIC

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        # Augmentation runs in float32 whatever the global dtype policy: under mixed
        # precision, a bfloat16 copy between two steps would lose the 8-bit pixel values.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.seed = seed
        with tf.init_scope():
            if seed is None:
                self._rng = tf.random.Generator.from_non_deterministic_state()
            else:
                self._rng = tf.random.Generator.from_seed(int(seed))

    # ------------------------------------------------------------- subclass API
    def get_random_transformation(
        self, images: tf.Tensor, seed: tf.Tensor, device: DeviceBatch | None = None
    ) -> Any:
        """Draws the random parameters of the whole batch from the stateless `seed`.

        `device` (see `DeviceBatch`) goes to the draws (`uniform(..., device=device)`).
        """
        return None

    def transform_images(
        self, images: tf.Tensor, transformation: Any, device: DeviceBatch | None = None
    ) -> tf.Tensor:
        """Applies `transformation` to the batch `images` `[B, H, W, 3]`.

        With a `device` (see `DeviceBatch`), in the static-shape accelerator form.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `transform_images`.")

    # ---------------------------------------------------------------- machinery
    def next_seed(self) -> tf.Tensor:
        """A fresh stateless seed (int64 `[2]`) from the layer's generator."""
        return self._rng.make_seeds(1)[:, 0]

    def call(self, images, training=None, seed=None, device=None):
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
        transformation = self.get_random_transformation(images, seed, device=device)
        outputs = self.transform_images(images, transformation, device=device)
        return outputs[0] if unbatched else outputs

    def build(self, input_shape) -> None:
        """Nothing to build: an augmentation layer has no weights.

        Without this, Keras builds a layer on its first call by tracing `call`
        symbolically, once more for every step of a recipe.
        """
        self.built = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


#: Static batches up to this size (the views of one file) are transformed image by image.
SMALL_BATCH = 4


def stage_of(layer) -> str:
    """The stage of `layer`: its `stage` attribute, `"photometric"` when it has none."""
    stage = getattr(layer, "stage", PHOTOMETRIC)
    if stage not in STAGES:
        raise ValueError(
            f"{type(layer).__name__}.stage is {stage!r}; expected one of {STAGES}. Set the "
            "class attribute `stage = 'geometric'` (crops, flips) or 'photometric'."
        )
    return stage


@dataclass(frozen=True)
class DeviceBatch:
    """A call in the train step: the accelerator form, on (a part of) a global batch.

    Passed to a kclr layer as `layer(images, training=True, seed=seed, device=...)`,
    which hands it to its draws (`uniform`, `normal`, `bernoulli`), to `apply_where` and
    to the layers it wraps. With a `device`:

    - a probabilistic op is computed for the whole batch and selected per image
      (static shapes: XLA-compilable, no `tf.dynamic_partition`, no `tf.cond`), instead
      of being computed on the selected images only (the CPU form);
    - with `rows` (int `[b]`) and `total`, the local batch is rows `rows` of a batch of
      `total` images: every per-image random draw is taken for the `total` images and
      row `rows[i]` kept for image `i`. A replica, or a gradient-cache chunk, then draws
      exactly the parameters its images get on a single device running the whole batch.

    `ContrastiveTrainer` passes one to a recipe's photometric stage in the train step.
    Every `AugmentationLayer` receives it as the `device` argument of
    `get_random_transformation` and `transform_images` (`None` outside the train step).

    Example:

    ```python
    device = kclr.augment.DeviceBatch(rows=tf.range(4, 8), total=8)
    half = photometric(images[4:], training=True, seed=seed, device=device)
    ```
    """

    rows: tf.Tensor | None = None
    total: tf.Tensor | int | None = None

    def per_image(self, draw, shape, seed):
        """`draw(shape, seed)`, taken for the `total` images and gathered at `rows`.

        The first axis of a non-scalar `shape` is the batch; a scalar draw is shared.
        """
        if self.rows is None or not shape:
            return draw(shape, seed)
        full = draw([self.total, *shape[1:]], seed)
        return tf.gather(full, self.rows)


def _per_image(draw, shape, seed, device):
    shape = list(shape) if isinstance(shape, (list, tuple)) else shape
    if device is None or not isinstance(shape, list):
        return draw(shape, seed)
    return device.per_image(draw, shape, seed)


def uniform(
    seed: tf.Tensor,
    shape,
    minval=0.0,
    maxval=1.0,
    salt: int = 0,
    device: DeviceBatch | None = None,
) -> tf.Tensor:
    """`tf.random.stateless_uniform` with a salt folded into `seed` (one stream per use).

    The first axis of a non-scalar `shape` is the batch: with a `device` holding rows,
    the draw is taken for the whole global batch and the rows kept (see `DeviceBatch`).
    """
    seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), salt, alg=RNG_ALG)
    return _per_image(
        lambda s, sd: tf.random.stateless_uniform(s, sd, minval=minval, maxval=maxval, alg=RNG_ALG),
        shape,
        seed,
        device,
    )


def normal(seed: tf.Tensor, shape, salt: int = 0, device: DeviceBatch | None = None) -> tf.Tensor:
    """`tf.random.stateless_normal` with a salt, per image like `uniform`."""
    seed = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), salt, alg=RNG_ALG)
    if not isinstance(shape, (list, tuple)):
        shape = tf.unstack(tf.convert_to_tensor(shape), num=4)
    return _per_image(
        lambda s, sd: tf.random.stateless_normal(s, sd, alg=RNG_ALG), list(shape), seed, device
    )


def bernoulli(
    seed: tf.Tensor,
    batch_size,
    probability: float,
    salt: int = 0,
    device: DeviceBatch | None = None,
) -> tf.Tensor:
    """A boolean `[batch_size]` mask that is True with `probability` per image."""
    return uniform(seed, [batch_size], salt=salt, device=device) < probability


def fold(seed: tf.Tensor, salt: int) -> tf.Tensor:
    """A new stateless seed derived from `seed` and an integer `salt`."""
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), salt, alg=RNG_ALG)


def select(mask: tf.Tensor, if_true: tf.Tensor, if_false: tf.Tensor) -> tf.Tensor:
    """Per-image choice between two batches of images, `mask` is `[B]` bool.

    Written as `a * m + b * (1 - m)` (exact for m in {0, 1} and finite values):
    broadcasting `tf.where` is several times slower on CPU.
    """
    m = tf.cast(mask, if_true.dtype)[:, None, None, None]
    return if_true * m + if_false * (1.0 - m)


def apply_where(
    mask: tf.Tensor,
    fn,
    images: tf.Tensor,
    *params: tf.Tensor,
    device: DeviceBatch | None = None,
) -> tf.Tensor:
    """Applies `fn(images[mask], *params[mask])` to the selected images only.

    The batch is split with `tf.dynamic_partition` and put back with
    `tf.dynamic_stitch`, so an op applied with probability p costs p of the batch. A
    small static batch (the views of one file in tf.data) uses one `tf.cond` per image
    instead, which copies nothing for the images left alone. With a `device` (the
    accelerator form, see `DeviceBatch`) `fn` runs on the whole batch and the result is
    selected per image.
    """
    if device is not None:
        return select(mask, fn(images, *params), images)
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


def as_layer(layer: Any) -> keras.layers.Layer:
    """A Keras layer from a layer, Keras's serialized form, a registered name or a spec."""
    if isinstance(layer, keras.layers.Layer):
        return layer
    if isinstance(layer, dict) and "module" in layer:
        return keras.saving.deserialize_keras_object(layer)
    return augmentations.get(layer)
