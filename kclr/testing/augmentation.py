"""Contract checks for augmentation layers, reusable by plugin authors in their own tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def check_augmentation_layer(
    make_layer: Callable[..., Any],
    *,
    seed: int = 0,
    batch_size: int = 8,
    image_size: int = 32,
    output_shape: tuple[int, ...] | None = None,
) -> None:
    """Asserts the contract every kclr augmentation layer keeps.

    - output shape (default: the input shape), float32 dtype and values in [0, 1];
    - `training=False` returns the input unchanged;
    - `get_config` / `from_config` round trip gives the same config;
    - two layers built with the same seed give the same output;
    - the layer runs inside `tf.data.Dataset.map` on batches;
    - a photometric layer gives finite values on input that spans
      `kclr.augment.PHOTOMETRIC_INPUT_RANGE` (what it receives after a bicubic crop).

    `check_layer` (in `kclr.testing`) checks that every constructor argument survives a
    saved model; this checks the behaviour of one layer.

    Args:
        make_layer: called as `make_layer(seed=seed)` to build the layer.
        seed: seed passed to `make_layer`.
        batch_size, image_size: size of the random test batch.
        output_shape: expected output shape when the layer resizes.

    Example:

    ```python
    from kclr.testing import check_augmentation_layer
    check_augmentation_layer(lambda seed: MyJitter(strength=0.5, seed=seed))
    ```
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 1.0, (batch_size, image_size, image_size, 3)).astype("float32")
    expected_shape = tuple(output_shape or images.shape)

    layer = make_layer(seed=seed)
    out = np.asarray(layer(images, training=True))
    assert out.shape == expected_shape, f"shape {out.shape} != expected {expected_shape}"
    assert out.dtype == np.float32, f"dtype {out.dtype} != float32"
    assert out.min() >= 0.0 and out.max() <= 1.0, f"values outside [0, 1]: {out.min()}..{out.max()}"

    if output_shape is None:
        identity = np.asarray(layer(images, training=False))
        np.testing.assert_array_equal(identity, images, err_msg="training=False must be identity")

    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config, "get_config/from_config round trip changed the config"

    again = np.asarray(make_layer(seed=seed)(images, training=True))
    np.testing.assert_allclose(again, out, atol=1e-6, err_msg="same seed must give same output")

    from kclr.augment.base import PHOTOMETRIC, PHOTOMETRIC_INPUT_RANGE, stage_of

    if stage_of(layer) == PHOTOMETRIC:
        low, high = PHOTOMETRIC_INPUT_RANGE
        wide = np.asarray(layer(images * (high - low) + low, training=True))
        assert np.isfinite(wide).all(), f"non-finite output on input in {PHOTOMETRIC_INPUT_RANGE}"

    dataset = tf.data.Dataset.from_tensor_slices(images).batch(batch_size // 2)
    dataset = dataset.map(lambda x: layer(x, training=True))
    shapes = [tuple(batch.shape) for batch in dataset]
    assert shapes == [(batch_size // 2, *expected_shape[1:])] * 2, f"tf.data shapes {shapes}"
