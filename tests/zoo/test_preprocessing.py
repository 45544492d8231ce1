"""`kclr.zoo.preprocess` crops the authors' boxes (`_compute_crop_shape` uses `rint`)."""

from __future__ import annotations

import numpy as np
import pytest

import kclr


def _numbered(height: int, width: int) -> np.ndarray:
    """Every pixel distinct: the crop is identified exactly by its values."""
    values = np.arange(height * width, dtype=np.float64).reshape(height, width) / (height * width)
    return np.repeat(values[..., None], 3, axis=-1).astype(np.float32)


@pytest.mark.parametrize(
    "height, width, side, top, left",
    [
        (375, 500, 328, 24, 86),  # the reference's eval boxes (section 2)
        (256, 341, 224, 16, 59),
        (224, 224, 196, 14, 14),
        (500, 500, 438, 31, 31),  # 0.875 * 500 = 437.5 -> rint 438 (floor would give 437)
        (500, 667, 438, 31, 115),
        (333, 500, 291, 21, 105),  # 291.375 -> 291
    ],
)
def test_centre_crop_box(height, width, side, top, left):
    image = _numbered(height, width)
    out = np.asarray(kclr.zoo.preprocess(image, image_size=side))  # same size: no resampling
    np.testing.assert_allclose(out, image[top : top + side, left : left + side], atol=1e-6)


def test_uint8_batches_and_no_crop():
    batch = np.random.default_rng(0).integers(0, 256, size=(2, 40, 40, 3), dtype=np.uint8)
    out = np.asarray(kclr.zoo.preprocess(batch, image_size=40, crop_fraction=None))
    np.testing.assert_allclose(out, batch / 255.0, atol=1e-6)
    assert tuple(kclr.zoo.preprocess(batch, image_size=32).shape) == (2, 32, 32, 3)
