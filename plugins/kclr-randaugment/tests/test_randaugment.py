"""Tests of the kclr-randaugment plugin, run against the installed package."""

import numpy as np
import pytest
import tensorflow as tf
from kclr_randaugment import AutoAugment, RandAugment


def _images(batch=16, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (batch, size, size, 3)).astype("float32")


@pytest.mark.parametrize("layer_cls", [RandAugment, AutoAugment])
def test_shape_range_and_identity_when_not_training(layer_cls):
    images = _images()
    layer = layer_cls(seed=1)
    out = np.asarray(layer(images, training=True))
    assert out.shape == images.shape
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)


def test_randaugment_choices_are_per_image():
    images = np.repeat(_images(batch=1), 64, axis=0)  # 64 copies of one image
    out = np.asarray(RandAugment(num_ops=1, magnitude=9, seed=3)(images, training=True))
    distinct = {np.round(o, 4).tobytes() for o in out}
    # 14 operations drawn per image: identical inputs must give several different outputs.
    assert len(distinct) >= 5
    # identity is one of 14 ops: about 1/14 of the copies come out unchanged.
    unchanged = np.mean([np.allclose(o, images[0]) for o in out])
    assert unchanged < 0.5


def test_autoaugment_probabilities_leave_some_images_unchanged():
    images = _images(batch=256)
    out = np.asarray(AutoAugment(seed=5)(images, training=True))
    unchanged = np.mean([np.allclose(o, i, atol=1e-6) for o, i in zip(out, images, strict=False)])
    # Both steps skip with (1-p1)(1-p2), averaged over the policy: about 0.15.
    assert 0.05 < unchanged < 0.3


@pytest.mark.parametrize("layer_cls", [RandAugment, AutoAugment])
def test_config_round_trip_and_seeded_reproducibility(layer_cls):
    layer = layer_cls(seed=7)
    clone = layer_cls.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    images = _images()
    np.testing.assert_allclose(
        np.asarray(layer(images, training=True)), np.asarray(clone(images, training=True))
    )


def test_works_inside_tf_data():
    layer = RandAugment(seed=0)
    ds = (
        tf.data.Dataset.from_tensor_slices(_images(batch=8))
        .batch(4)
        .map(lambda x: layer(x, training=True))
    )
    batches = list(ds)
    assert [b.shape for b in batches] == [(4, 32, 32, 3), (4, 32, 32, 3)]


def test_invalid_arguments_are_explained():
    with pytest.raises(ValueError, match="magnitude must be in"):
        RandAugment(magnitude=11)
    with pytest.raises(ValueError, match="Unknown AutoAugment policy 'cifar'"):
        AutoAugment(policy="cifar")


def test_discovered_by_kclr_registry_with_origin():
    from kclr import registry

    entry = registry.augmentations.entry("rand_augment")
    assert entry.origin == "kclr-randaugment"
    assert entry.obj is RandAugment
    layer = registry.augmentations.get({"name": "auto_augment", "config": {"seed": 1}})
    assert isinstance(layer, AutoAugment)


@pytest.mark.parametrize("layer_cls", [RandAugment, AutoAugment])
def test_kclr_augmentation_contract(layer_cls):
    from kclr.testing import check_augmentation_layer

    check_augmentation_layer(lambda seed: layer_cls(seed=seed))


def test_every_argument_survives_a_saved_model():
    from kclr.testing import check_layer

    check_layer(RandAugment, {"num_ops": 1, "magnitude": 5.0, "seed": 3})
    # "imagenet" is AutoAugment's only policy: no other value to set.
    check_layer(AutoAugment, {"seed": 3}, skip=("policy",))
