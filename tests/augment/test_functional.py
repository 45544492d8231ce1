"""Batched kernels of kclr.augment.functional against TensorFlow and the official references."""

import numpy as np
import pytest
import tensorflow as tf

from kclr.augment import functional as F


def _images(batch=4, size=16, seed=0):
    return tf.random.stateless_uniform([batch, size, size, 3], [seed, 1])


@pytest.mark.parametrize("method", ["bicubic", "bilinear"])
def test_crop_and_resize_equals_tf_resize_of_each_crop(method):
    images = tf.random.stateless_uniform([3, 40, 50, 3], [0, 0])
    boxes = tf.constant([[3, 5, 20, 30], [0, 0, 40, 50], [10, 2, 7, 9]])
    out = F.crop_and_resize(images, boxes, (24, 20), method)
    for i in range(3):
        y, x, h, w = boxes[i].numpy()
        ref = tf.image.resize(images[i, y : y + h, x : x + w], [24, 20], method)
        np.testing.assert_allclose(out[i].numpy(), ref.numpy(), atol=2e-6)


def test_colour_ops_equal_tf_image_per_image():
    images = tf.concat([_images(4), tf.fill([1, 16, 16, 3], 0.5)], 0)
    delta = tf.constant([-0.3, -0.1, 0.05, 0.2, 0.1])
    factor = tf.constant([0.2, 0.9, 1.4, 1.8, 1.2])
    planes = tf.unstack(images, axis=-1)
    refs = {
        "hue": [tf.image.adjust_hue(images[i], delta[i]) for i in range(5)],
        "sat": [tf.image.adjust_saturation(images[i], factor[i]) for i in range(5)],
        "con": [tf.image.adjust_contrast(images[i], factor[i]) for i in range(5)],
    }
    ours = {
        "hue": [F.adjust_hue(images, delta), tf.stack(F.planes_hue(planes, delta), -1)],
        "sat": [
            F.adjust_saturation(images, factor),
            tf.stack(F.planes_saturation(planes, factor), -1),
        ],
        "con": [
            F.adjust_contrast(images, factor),
            tf.stack(F.planes_contrast(planes, factor), -1),
        ],
    }
    for name, ref in refs.items():
        for out in ours[name]:
            np.testing.assert_allclose(out.numpy(), tf.stack(ref).numpy(), atol=2e-6)


def test_grayscale_matches_tf():
    images = _images()
    ref = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(images))
    np.testing.assert_allclose(F.grayscale(images).numpy(), ref.numpy(), atol=1e-6)


def test_gaussian_taps_match_official_golden(golden):
    taps = F.gaussian_taps(tf.constant(1.0), 22).numpy()
    assert taps.shape == (23,)  # kernel size 22 -> radius 11 -> 23 taps
    kernel_2d = np.outer(taps, taps)
    np.testing.assert_allclose(kernel_2d[11], golden["blur_k22_sigma1_row_center"], atol=1e-7)
    assert kernel_2d.sum() == pytest.approx(golden["blur_k22_sigma1_sum"], abs=1e-6)


def test_separable_blur_per_image_sigma_matches_per_image_reference():
    images = _images(3, 24)
    sigma = tf.constant([0.3, 1.0, 2.0])
    out = F.separable_blur(images, F.gaussian_taps(sigma, 5))
    for i in range(3):
        t = F.gaussian_taps(sigma[i], 5)
        v = tf.tile(tf.reshape(t, [5, 1, 1, 1]), [1, 1, 3, 1])
        h = tf.tile(tf.reshape(t, [1, 5, 1, 1]), [1, 1, 3, 1])
        ref = tf.nn.depthwise_conv2d(images[i : i + 1], v, [1] * 4, "SAME")
        ref = tf.nn.depthwise_conv2d(ref, h, [1] * 4, "SAME")
        np.testing.assert_allclose(out[i].numpy(), ref[0].numpy(), atol=1e-6)


def test_separable_blur_of_empty_batch_is_empty():
    out = F.separable_blur(tf.zeros([0, 8, 8, 3]), tf.zeros([0, 3]))
    assert out.shape[0] == 0


@pytest.mark.parametrize("shape", [(375, 500), (500, 375), (224, 224), (256, 341)])
def test_center_crop_box_matches_official_golden(golden, shape):
    expected = golden["center_crop_0.875_square"][f"{shape[0]}x{shape[1]}"]
    y, x, h, w = F.center_crop_box(*shape).numpy()
    assert (h, w, y, x) == (
        expected["crop_h"],
        expected["crop_w"],
        expected["offset_h"],
        expected["offset_w"],
    )


def test_inception_crop_area_quantiles_match_official_reference():
    # Reference: 20k samples of tf.image.sample_distorted_bounding_box on 480x640 with
    # the official arguments: quantiles .138/.207/.351/.534/.687, min area 0.100.
    boxes = F.sample_inception_boxes(tf.constant([3, 4]), 4000, 480, 640).numpy()
    area = boxes[:, 2] * boxes[:, 3] / (480 * 640)
    quantiles = np.quantile(area, [0.1, 0.25, 0.5, 0.75, 0.9])
    np.testing.assert_allclose(quantiles, [0.138, 0.207, 0.351, 0.534, 0.687], atol=0.025)
    assert area.min() >= 0.0999
    aspect = boxes[:, 3] / boxes[:, 2]
    assert aspect.min() >= 0.74 and aspect.max() <= 1.34
    # Aspect ratio is uniform in [3/4, 4/3]: mean (3/4 + 4/3) / 2.
    assert aspect.mean() == pytest.approx((0.75 + 4 / 3) / 2, abs=0.02)
    assert (boxes[:, 0] + boxes[:, 2] <= 480).all() and (boxes[:, 1] + boxes[:, 3] <= 640).all()
    assert (boxes[:, :2] >= 0).all()


def test_inception_crop_falls_back_to_whole_image():
    # An impossible aspect range (far too wide for the image) leaves no valid attempt.
    boxes = F.sample_inception_boxes(
        tf.constant([0, 0]), 16, 20, 20, aspect_ratio_range=(30.0, 40.0)
    ).numpy()
    np.testing.assert_array_equal(boxes, np.tile([0, 0, 20, 20], [16, 1]))


def _torchvision_reference(n, height, width, rng, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision.transforms.RandomResizedCrop.get_params, written out in NumPy."""
    areas = []
    for _ in range(n):
        for _ in range(10):
            area = height * width * rng.uniform(*scale)
            aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
            w = int(round(np.sqrt(area * aspect)))
            h = int(round(np.sqrt(area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                areas.append(w * h / (height * width))
                break
        else:
            areas.append(1.0)
    return np.asarray(areas)


def test_torchvision_crop_matches_torchvision_algorithm():
    boxes = F.sample_torchvision_boxes(tf.constant([1, 2]), 4000, 400, 400).numpy()
    area = boxes[:, 2] * boxes[:, 3] / 400**2
    assert area.min() >= 0.075 and area.max() <= 1.0
    reference = _torchvision_reference(4000, 400, 400, np.random.default_rng(0))
    quantiles = [0.1, 0.25, 0.5, 0.75, 0.9]
    np.testing.assert_allclose(
        np.quantile(area, quantiles), np.quantile(reference, quantiles), atol=0.03
    )
    log_aspect = np.log(boxes[:, 3] / boxes[:, 2])
    assert np.mean(log_aspect) == pytest.approx(0.0, abs=0.02)
    assert (boxes[:, 0] + boxes[:, 2] <= 400).all() and (boxes[:, :2] >= 0).all()
