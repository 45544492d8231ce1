"""The input-range contract: where values may leave [0, 1] in a recipe, and by how much."""

import numpy as np
import tensorflow as tf

import kclr.augment as A
from kclr import registry
from kclr.augment import functional

LOW, HIGH = A.PHOTOMETRIC_INPUT_RANGE


def _bars(inner_equal: bool) -> np.ndarray:
    """16x16 bars of period 4 whose bicubic 2x downsampling hits the kernel's extreme."""
    bars = np.array([1, 1, 0, 0] * 4)
    image = (bars[:, None] == bars[None, :]) == inner_equal
    return np.repeat(image.astype("float32")[..., None], 3, axis=-1)


def test_the_bicubic_crop_overshoots_by_at_most_the_stated_range():
    images = tf.constant(np.stack([_bars(True), _bars(False)]))
    boxes = tf.constant([[0, 0, 16, 16]] * 2, tf.int32)
    out = functional.crop_and_resize(images, boxes, (8, 8), "bicubic").numpy()
    # The worst case reaches the bound exactly: 1.125^2 + 0.125^2 and -2 x 1.125 x 0.125.
    assert (out.max(), out.min()) == (HIGH, LOW) == (1.28125, -0.28125)
    noise = tf.random.stateless_uniform([16, 32, 32, 3], [0, 1])
    crops = A.RandomResizedCrop(24, seed=0)(noise, training=True).numpy()
    assert LOW <= crops.min() < 0.0 and 1.0 < crops.max() <= HIGH


def test_a_photometric_layer_receives_the_overshoot_and_the_recipe_clips_at_its_end():
    seen = []

    class Record(A.AugmentationLayer):
        def transform_images(self, images, transformation, device=None):
            seen.append(images.numpy())
            return images

    recipe = registry.recipes.get("simclr_cifar", image_size=24, color_jitter_probability=0.0,
                                  grayscale_probability=0.0, seed=0)  # fmt: skip
    pipeline = A.AugmentationPipeline([*recipe.steps, Record()], clip=True, seed=0)
    images = tf.constant(np.stack([_bars(True)] * 4 + [_bars(False)] * 4))
    out = pipeline(images, training=True).numpy()
    (received,) = seen
    assert received.min() < -0.05 and received.max() > 1.05  # as the authors' code passes it on
    assert LOW <= received.min() and received.max() <= HIGH
    assert out.min() >= 0.0 and out.max() <= 1.0
