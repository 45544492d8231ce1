"""Each layer's random parameters follow its definition (one batched call per check)."""

import numpy as np
import pytest
import tensorflow as tf

import kclr.augment as A

N = 2000


def _tiny(n=N, value=None, seed=0):
    if value is not None:
        return tf.fill([n, 4, 4, 3], value)
    return tf.random.stateless_uniform([n, 4, 4, 3], [seed, 3], 0.1, 0.9)


def _changed(out, images):
    return np.any(np.abs(out.numpy() - images.numpy()) > 1e-6, axis=(1, 2, 3))


def test_color_distortion_fires_with_probability_0_8():
    images = _tiny()
    out = A.ColorDistortion(seed=0)(images, training=True)
    assert _changed(out, images).mean() == pytest.approx(0.8, abs=0.03)


@pytest.mark.parametrize(
    "layer,p",
    [
        (A.RandomGrayscale(seed=0), 0.2),
        (A.RandomFlip(seed=0), 0.5),
        (A.RandomGaussianBlur(kernel_size=3, seed=0), 0.5),
        (A.RandomSolarize(threshold=0.0, probability=0.3, seed=0), 0.3),
        (A.RandomApply(A.RandomGrayscale(1.0), probability=0.7, seed=0), 0.7),
    ],
)
def test_probabilities(layer, p):
    images = _tiny()
    out = layer(images, training=True)
    assert _changed(out, images).mean() == pytest.approx(p, abs=0.035)


def test_multiplicative_brightness_factor_distribution():
    images = _tiny(value=0.5)
    layer = A.ColorDistortion(contrast=0, saturation=0, hue=0, probability=1.0, seed=0)
    factor = layer(images, training=True).numpy()[:, 0, 0, 0] / 0.5
    assert factor.min() >= 0.2 - 1e-6 and factor.max() <= 1.8 + 1e-6
    assert factor.mean() == pytest.approx(1.0, abs=0.03)
    assert np.quantile(factor, 0.25) == pytest.approx(0.6, abs=0.05)  # uniform [0.2, 1.8]


def test_additive_brightness_v1_distribution():
    images = _tiny(value=0.5)
    layer = A.ColorDistortion(
        brightness=0.4, contrast=0, saturation=0, hue=0, probability=1.0,
        impl="simclrv1", seed=0,
    )  # fmt: skip
    delta = layer(images, training=True).numpy()[:, 0, 0, 0] - 0.5
    assert delta.min() >= -0.4 - 1e-6 and delta.max() <= 0.4 + 1e-6
    assert delta.mean() == pytest.approx(0.0, abs=0.02)
    assert np.std(delta) == pytest.approx(0.8 / np.sqrt(12), abs=0.015)


def test_color_distortion_equals_sequential_tf_image_ops_in_drawn_order():
    images = tf.random.stateless_uniform([16, 8, 8, 3], [1, 1])
    layer = A.ColorDistortion(strength=1.0, probability=0.8, seed=0)
    seed = tf.constant([5, 6], tf.int64)
    out = layer(images, training=True, seed=seed).numpy()
    params = layer.get_random_transformation(images, seed)
    factors, order = params["factors"].numpy(), params["order"].numpy()
    assert sorted(map(tuple, np.sort(order[order[:, 0] != 4], axis=1)))[0] == (0, 1, 2, 3)
    for i in range(16):
        x = images[i]
        for op in order[i]:
            if op == 4:
                break
            f = float(factors[i, op])
            x = [
                lambda x, f=f: x * f,
                lambda x, f=f: tf.image.adjust_contrast(x, f),
                lambda x, f=f: tf.image.adjust_saturation(x, f),
                lambda x, f=f: tf.image.adjust_hue(x, f),
            ][op](x)
            x = tf.clip_by_value(x, 0.0, 1.0)
        np.testing.assert_allclose(out[i], x.numpy(), atol=3e-6)


@pytest.mark.parametrize(
    "layer",
    [
        A.ColorDistortion(strength=1.0, probability=0.8),
        A.ColorDistortion(strength=0.5, impl="simclrv1", random_order=False),
        A.RandomGrayscale(probability=0.5),
        A.RandomGaussianBlur(kernel_size=5, probability=0.5),
    ],
    ids=["jitter", "jitter_v1_fixed_order", "grayscale", "blur"],
)
def test_small_batch_path_equals_batched_path(layer):
    # Batches of <= SMALL_BATCH images (the views of one file in tf.data) take a
    # per-image path (`tf.switch_case` / `tf.cond`); it must give the batched result.
    images = tf.random.stateless_uniform([16, 8, 8, 3], [2, 7])
    params = layer.get_random_transformation(images, tf.constant([3, 4], tf.int64))
    batched = layer.transform_images(images, params).numpy()
    for start in range(0, 16, 2):
        part = tf.nest.map_structure(lambda t, s=start: t[s : s + 2], params)
        small = layer.transform_images(images[start : start + 2], part).numpy()
        np.testing.assert_allclose(small, batched[start : start + 2], atol=3e-6)
    assert not np.allclose(batched, images.numpy(), atol=1e-3)


def test_random_order_is_uniform_over_first_op():
    layer = A.ColorDistortion(probability=1.0)
    order = layer.get_random_transformation(_tiny(), tf.constant([0, 1]))["order"].numpy()
    counts = np.bincount(order[:, 0], minlength=4) / N
    np.testing.assert_allclose(counts, 0.25, atol=0.03)
    assert len({tuple(o) for o in order}) == 24


def test_blur_sigma_range_per_image_and_mean_preserved():
    layer = A.RandomGaussianBlur(probability=1.0, seed=0)
    sigma = layer.get_random_transformation(_tiny(), tf.constant([0, 2]))["sigma"].numpy()
    assert sigma.min() >= 0.1 and sigma.max() <= 2.0
    assert sigma.mean() == pytest.approx(1.05, abs=0.04)
    assert len(np.unique(sigma)) > N // 2  # per image, not per batch
    # A blob away from the borders: every sigma in the range keeps the image sum.
    images = np.zeros([16, 40, 40, 3], np.float32)
    images[:, 14:26, 14:26] = np.random.default_rng(0).random([16, 12, 12, 3])
    out = layer(tf.constant(images), training=True).numpy()  # kernel 4 -> radius 2
    np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), images.sum(axis=(1, 2, 3)), rtol=1e-5)
    assert not np.allclose(out, images)


def test_blur_per_batch_sigma_option():
    layer = A.RandomGaussianBlur(per_image_sigma=False)
    sigma = layer.get_random_transformation(_tiny(64), tf.constant([0, 2]))["sigma"].numpy()
    assert len(np.unique(sigma)) == 1


def test_random_resized_crop_output_is_resize_of_sampled_box():
    images = tf.random.stateless_uniform([4, 40, 48, 3], [2, 2])
    layer = A.RandomResizedCrop(16)
    seed = tf.constant([1, 1], tf.int64)
    out = layer(images, training=True, seed=seed).numpy()
    boxes = layer.get_random_transformation(images, seed).numpy()
    for i, (y, x, h, w) in enumerate(boxes):
        ref = tf.image.resize(images[i, y : y + h, x : x + w], [16, 16], "bicubic")
        np.testing.assert_allclose(out[i], ref.numpy(), atol=2e-6)


def test_center_crop_layer_uses_official_box(golden):
    box = golden["center_crop_0.875_square"]["256x341"]
    images = tf.random.stateless_uniform([1, 256, 341, 3], [0, 0])
    out = A.CenterCrop(64)(images)
    y, x, h, w = box["offset_h"], box["offset_w"], box["crop_h"], box["crop_w"]
    ref = tf.clip_by_value(
        tf.image.resize(images[:, y : y + h, x : x + w], [64, 64], "bicubic"), 0.0, 1.0
    )
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=2e-6)


def test_grayscale_output_has_equal_channels():
    out = A.RandomGrayscale(1.0)(_tiny(16), training=True).numpy()
    np.testing.assert_allclose(out[..., 0], out[..., 2], atol=1e-6)


def test_cutout_masks_a_square_of_the_given_size():
    images = tf.ones([N // 4, 20, 20, 3])
    out = A.RandomCutout(size=0.2, fill_value=0.0, seed=0)(images, training=True).numpy()
    masked = (out[..., 0] == 0).sum(axis=(1, 2))
    assert masked.max() == 16  # 4x4 when fully inside
    assert np.median(masked) == 16 and masked.min() >= 4


def test_rotation_angles_uniform_and_exact():
    images = tf.random.stateless_uniform([600, 4, 4, 3], [0, 9])
    out = A.RandomRotation(seed=0)(images, training=True).numpy()
    counts = np.zeros(4)
    for i in range(600):
        k = [np.array_equal(out[i], np.rot90(images[i].numpy(), k)) for k in range(4)]
        assert sum(k) == 1
        counts += k
    assert counts[0] == 0
    np.testing.assert_allclose(counts[1:] / 600, 1 / 3, atol=0.06)


def test_gaussian_noise_std_and_sobel_of_constant():
    images = _tiny(200, value=0.5)
    out = A.RandomGaussianNoise(stddev_range=0.05, seed=0)(images, training=True).numpy()
    assert np.std(out - 0.5) == pytest.approx(0.05, rel=0.05)
    edges = A.SobelFilter()(tf.fill([2, 8, 8, 3], 0.3), training=True).numpy()
    np.testing.assert_allclose(edges, 0.0, atol=1e-6)


def test_random_choice_frequencies():
    images = _tiny(value=0.6)
    layer = A.RandomChoice(
        [A.RandomGrayscale(0.0), A.RandomSolarize(threshold=0.5, probability=1.0)],
        probabilities=[0.25, 0.75],
        seed=0,
    )
    out = layer(images, training=True).numpy()
    solarized = np.isclose(out[:, 0, 0, 0], 0.4)
    assert solarized.mean() == pytest.approx(0.75, abs=0.03)
