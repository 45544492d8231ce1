"""Every augmentation layer: shapes, range, tf.data, model use, config round trip, seeds."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kclr.augment as A
from kclr import registry


def _layers():
    return {
        "random_resized_crop": lambda s: A.RandomResizedCrop(24, seed=s),
        "random_resized_crop_tv": lambda s: A.RandomResizedCrop(
            24, semantics="torchvision", attempts=10, seed=s
        ),
        "center_crop": lambda s: A.CenterCrop(24, seed=s),
        "random_flip": lambda s: A.RandomFlip("horizontal_and_vertical", seed=s),
        "color_distortion": lambda s: A.ColorDistortion(seed=s),
        "color_distortion_v1": lambda s: A.ColorDistortion(0.5, impl="simclrv1", seed=s),
        "random_grayscale": lambda s: A.RandomGrayscale(0.5, seed=s),
        "random_gaussian_blur": lambda s: A.RandomGaussianBlur(seed=s),
        "random_solarize": lambda s: A.RandomSolarize(probability=0.5, seed=s),
        "random_apply": lambda s: A.RandomApply(A.RandomGrayscale(1.0), 0.5, seed=s),
        "random_choice": lambda s: A.RandomChoice(
            [A.RandomGrayscale(1.0), A.RandomSolarize(probability=1.0)], seed=s
        ),
        "random_cutout": lambda s: A.RandomCutout(0.25, seed=s),
        "sobel_filter": lambda s: A.SobelFilter(probability=0.5, seed=s),
        "random_gaussian_noise": lambda s: A.RandomGaussianNoise(seed=s),
        "random_rotation": lambda s: A.RandomRotation(seed=s),
        "simclr_recipe": lambda s: registry.recipes.get("simclr", image_size=24, seed=s),
    }


LAYERS = _layers()
IMAGES = tf.random.stateless_uniform([8, 32, 32, 3], [0, 7])


def _size(name):
    return 24 if "crop" in name or "recipe" in name else 32


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_shape_dtype_range_and_seeded_reproducibility(name):
    layer = LAYERS[name](3)
    out = layer(IMAGES, training=True)
    size = _size(name)
    assert out.shape == (8, size, size, 3) and out.dtype == tf.float32
    if name != "random_resized_crop" and not name.startswith("random_resized_crop"):
        assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 1.0
    again = LAYERS[name](3)(IMAGES, training=True)
    np.testing.assert_array_equal(out.numpy(), again.numpy())
    if name != "center_crop":
        other = LAYERS[name](4)(IMAGES, training=True)
        assert not np.array_equal(out.numpy(), other.numpy())
        # Successive calls draw fresh parameters.
        assert not np.array_equal(out.numpy(), layer(IMAGES, training=True).numpy())


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_config_round_trip(name):
    layer = LAYERS[name](5)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert _strip(clone.get_config()) == _strip(config)
    np.testing.assert_array_equal(
        layer(IMAGES, training=True).numpy(), clone(IMAGES, training=True).numpy()
    )
    serialized = keras.saving.serialize_keras_object(layer)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(layer)
    assert _strip(restored.get_config()) == _strip(config)


def _strip(config):
    """Drops Keras's `build_config` (present once a nested layer has been called)."""
    if isinstance(config, dict):
        return {k: _strip(v) for k, v in config.items() if k != "build_config"}
    if isinstance(config, list):
        return [_strip(v) for v in config]
    return config


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_works_in_tf_data(name):
    layer = LAYERS[name](1)
    dataset = (
        tf.data.Dataset.from_tensor_slices(IMAGES).batch(4).map(lambda x: layer(x, training=True))
    )
    batches = list(dataset)
    size = _size(name)
    assert [tuple(b.shape) for b in batches] == [(4, size, size, 3)] * 2


def test_training_false_is_identity_and_crops_still_apply():
    for name in ("random_flip", "color_distortion", "random_gaussian_blur", "random_cutout"):
        out = LAYERS[name](0)(IMAGES, training=False)
        np.testing.assert_array_equal(out.numpy(), IMAGES.numpy())
    assert A.CenterCrop(24)(IMAGES, training=False).shape == (8, 24, 24, 3)


def test_inside_a_keras_model():
    inputs = keras.Input((32, 32, 3))
    x = A.RandomFlip(seed=0)(inputs)
    x = A.ColorDistortion(seed=0)(x)
    x = A.RandomGaussianBlur(seed=0)(x)
    model = keras.Model(inputs, x)
    out = model(IMAGES, training=True)
    assert out.shape == (8, 32, 32, 3)
    assert not np.allclose(out.numpy(), IMAGES.numpy())
    np.testing.assert_array_equal(model.predict(IMAGES, verbose=0), IMAGES.numpy())
    compiled = tf.function(lambda x: model(x, training=True))
    assert compiled(IMAGES).shape == (8, 32, 32, 3)


def test_unbatched_image_and_uint8_input():
    image = tf.cast(IMAGES[0] * 255, tf.uint8)
    out = A.RandomFlip(seed=0)(image, training=True)
    assert out.shape == (32, 32, 3) and out.dtype == tf.float32
    assert float(tf.reduce_max(out)) <= 1.0


def test_wrong_rank_error_names_shape():
    with pytest.raises(ValueError, match=r"received shape \(2, 2, 8, 8, 3\)"):
        A.RandomFlip()(tf.zeros([2, 2, 8, 8, 3]))


def test_all_layers_registered():
    expected = {
        "random_resized_crop", "random_flip", "color_distortion", "random_grayscale",
        "random_gaussian_blur", "random_solarize", "random_apply", "random_choice",
        "random_cutout", "sobel_filter", "random_gaussian_noise", "random_rotation",
        "center_crop",
    }  # fmt: skip
    assert expected <= set(registry.augmentations.names())
    layer = registry.augmentations.get("color_distortion", strength=0.5)
    assert isinstance(layer, A.ColorDistortion) and layer.brightness == pytest.approx(0.4)


def test_grayscale_in_tf_function_with_a_constant_seed_on_a_large_batch():
    """Regression: a reshape inside grayscale failed when the selected images came out of
    `tf.dynamic_partition` in a `tf.function` with a constant seed."""
    import numpy as np
    import tensorflow as tf

    from kclr.augment import RandomGrayscale

    layer = RandomGrayscale(seed=1)
    images = tf.random.stateless_uniform((64, 16, 16, 3), seed=[0, 1])

    @tf.function
    def augment(x):
        return layer(x, training=True, seed=tf.constant([1, 2]))

    out = augment(images).numpy()
    changed = ~np.all(np.isclose(out, images.numpy()), axis=(1, 2, 3))
    assert 0.05 < changed.mean() < 0.45
    reference = tf.image.rgb_to_grayscale(images).numpy()
    np.testing.assert_allclose(out[changed][..., 0], reference[changed][..., 0], atol=1e-6)
    np.testing.assert_allclose(out[changed][..., 2], reference[changed][..., 0], atol=1e-6)
