"""Tests of the kclr-kerascv bridge, run against the installed package and KerasCV."""

import numpy as np
import pytest

keras_cv = pytest.importorskip("keras_cv")

from kclr_kerascv import KerasCVLayer, RandomColorJitter, RandomCropAndResize  # noqa: E402


def _images(batch=8, size=48):
    return np.random.default_rng(0).uniform(0, 1, (batch, size, size, 3)).astype("float32")


def test_crop_and_resize_output_contract():
    layer = RandomCropAndResize(target_size=(32, 32), seed=1)
    out = np.asarray(layer(_images(), training=True))
    assert out.shape == (8, 32, 32, 3)
    assert 0.0 <= out.min() and out.max() <= 1.0
    clone = RandomCropAndResize.from_config(layer.get_config())
    assert clone.get_config()["target_size"] == (32, 32)


def test_color_jitter_changes_images_and_keeps_range():
    images = _images()
    out = np.asarray(RandomColorJitter(strength=1.0, seed=2)(images, training=True))
    assert out.shape == images.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert np.abs(out - images).mean() > 0.01
    np.testing.assert_array_equal(
        np.asarray(RandomColorJitter(seed=2)(images, training=False)), images
    )


def test_generic_layer_by_name_and_clear_error():
    layer = KerasCVLayer("Grayscale", output_channels=3)
    out = np.asarray(layer(_images(), training=True))
    np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-5)
    with pytest.raises(ValueError, match="keras_cv.layers has no layer named 'RandomCropp'"):
        KerasCVLayer("RandomCropp")


def test_discovered_by_kclr_registry_with_origin():
    from kclr import registry

    entry = registry.augmentations.entry("kerascv_random_color_jitter")
    assert entry.origin == "kclr-kerascv"
    layer = registry.augmentations.get("kerascv_random_crop_and_resize", target_size=(16, 16))
    assert np.asarray(layer(_images(), training=True)).shape == (8, 16, 16, 3)


def test_every_argument_survives_a_saved_model():
    from kclr.testing import check_layer

    # KerasCV's RandomColorJitter does not follow its seed: compare the configs only.
    jitter = {"strength": 0.5, "seed": 3}
    check_layer(RandomColorJitter, jitter, skip=("class_name",), compare_outputs=False)
    with pytest.raises(AssertionError, match="two layers built with the same arguments"):
        check_layer(RandomColorJitter, jitter, skip=("class_name",))
    check_layer(
        RandomCropAndResize,
        {"target_size": (12, 12), "crop_area_factor": (0.3, 0.9),
         "aspect_ratio_factor": (0.5, 2.0), "seed": 3},
        skip=("class_name",),  # fixed by the class, not an argument of its users
    )  # fmt: skip
