"""Input preparation matching the authors' evaluation preprocessing."""

from __future__ import annotations

from typing import Any


def preprocess(images: Any, image_size: int = 224, crop_fraction: float | None = 0.875):
    """Prepares images for a zoo encoder as the authors' `preprocess_for_eval`.

    Reference: google-research/simclr `data_util.py` (`center_crop`, `crop_proportion=0.875`).

    Central crop keeping `crop_fraction` of the shorter side, rounded to the nearest
    integer with `tf.math.rint` as the authors' `_compute_crop_shape` does (500 px ->
    438, ties to even), square, offset `((H - h) + 1) // 2`; bicubic resize to
    `image_size`; clip to [0, 1].

    Args:
        images: `[H, W, 3]` or `[B, H, W, 3]` RGB; uint8 (0..255) or floats in [0, 1].
        image_size: output size (224 for the published models).
        crop_fraction: fraction of the shorter side kept; `None` or 1 = no crop
            (the authors use no crop for 32-px CIFAR images).

    Returns:
        float32 tensor `[B, image_size, image_size, 3]` (or `[image_size, image_size, 3]`).

    Example:

    ```python
    encoder = kclr.zoo.load("simclr-r50-1x")
    features = encoder(kclr.zoo.preprocess(images))
    ```
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    single = images.shape.rank == 3
    if single:
        images = images[None]
    if images.shape.rank != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"preprocess expects RGB images [H, W, 3] or [B, H, W, 3]; received shape {images.shape}."
        )
    if images.dtype == tf.uint8:
        images = tf.cast(images, tf.float32) / 255.0
    else:
        images = tf.cast(images, tf.float32)
    if crop_fraction is not None and crop_fraction < 1:
        shape = tf.shape(images)
        height, width = shape[1], shape[2]
        shorter = tf.cast(tf.minimum(height, width), tf.float32)  # float32 as the authors
        side = tf.cast(tf.math.rint(crop_fraction * shorter), tf.int32)
        top = ((height - side) + 1) // 2
        left = ((width - side) + 1) // 2
        images = images[:, top : top + side, left : left + side, :]
    images = tf.image.resize(images, (image_size, image_size), method="bicubic")
    images = tf.clip_by_value(images, 0.0, 1.0)
    return images[0] if single else images
