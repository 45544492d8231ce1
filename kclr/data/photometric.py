"""Where a recipe's photometric stage runs: on the host (tf.data) or on the device.

`kclr.data.pretraining_dataset(photometric=...)` runs the geometric stage on the host and
the photometric stage on the host or, with `"device"`, leaves it to
`kclr.ContrastiveTrainer(device_augmenter=photometric_stage(...))`.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from kclr.augment.pipeline import AugmentationPipeline, split_stages
from kclr.data.augmenter import augmenter as build_augmenter

PHOTOMETRIC_PLACES = ("host", "device", "auto")


def photometric_stage(recipe: Any = "simclr", image_size: int = 224, **recipe_overrides: Any):
    """The photometric stage of a recipe: the `device_augmenter` of a device-side run.

    With `pretraining_dataset(..., photometric="device")` the pipeline yields uint8
    views made by the recipe's geometric stage; pass this layer to
    `kclr.ContrastiveTrainer(device_augmenter=...)` to apply the rest of the same
    recipe in the train step.

    Args:
        recipe: a recipe name or a Keras layer (as in `pretraining_dataset`).
        image_size: output side `S`.
        **recipe_overrides: keyword arguments for the recipe.

    Example:

    ```python
    dataset = kclr.data.pretraining_dataset("photos/", recipe="simclr", photometric="device")
    trainer = kclr.ContrastiveTrainer(
        encoder, head, device_augmenter=kclr.data.photometric_stage("simclr", 224)
    )
    ```
    """
    augmenter = build_augmenter(recipe, image_size, recipe_overrides)
    if isinstance(augmenter, AugmentationPipeline):
        return augmenter.photometric_stage()
    # A layer: its own stage or nothing; an asymmetric MultiView: one PerView step.
    _, photometric = split_stages(augmenter)
    return AugmentationPipeline(photometric, clip=True, name="photometric_stage")


def resolve_photometric(photometric: str) -> str:
    """`"host"` or `"device"`: `"auto"` is `"device"` when a GPU or TPU is present."""
    if photometric not in PHOTOMETRIC_PLACES:
        raise ValueError(
            f"photometric must be one of {PHOTOMETRIC_PLACES}; received {photometric!r}. "
            "Use 'host' (tf.data), 'device' (in the train step) or 'auto'."
        )
    if photometric == "auto":
        accelerators = tf.config.list_physical_devices("GPU")
        accelerators += tf.config.list_physical_devices("TPU")
        return "device" if accelerators else "host"
    return photometric


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """float `[0, 1]` images (overshoot allowed) rounded to uint8 `0..255`."""
    return tf.saturate_cast(tf.round(images * 255.0), tf.uint8)
