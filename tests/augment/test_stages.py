"""Recipes declare two stages; the accelerator form of each layer equals its CPU form."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kclr.augment as A
from kclr import registry
from kclr.augment.base import DeviceBatch, uniform
from kclr.augment.pipeline import split_stages

EXPECTED = {
    "simclr": (
        ["RandomResizedCrop", "RandomFlip"],
        ["ColorDistortion", "RandomGrayscale", "RandomGaussianBlur"],
    ),
    "simclr_cifar": (["RandomResizedCrop", "RandomFlip"], ["ColorDistortion", "RandomGrayscale"]),
    "supcon_cifar": (["RandomResizedCrop", "RandomFlip"], ["ColorDistortion", "RandomGrayscale"]),
    "finetune": (["RandomResizedCrop", "RandomFlip"], []),
    "eval": (["CenterCrop"], []),
}


def _names(layers):
    return [type(layer).__name__ for layer in layers]


@pytest.mark.parametrize(
    "name", sorted(e.name for e in registry.recipes.entries() if e.is_builtin and e.name != "byol")
)
def test_stage_split_of_every_recipe(name):  # byol: tests/augment/test_asymmetric_views.py
    recipe = registry.recipes.get(name, image_size=32)
    geometric, photometric = EXPECTED[name]
    assert _names(recipe.geometric) == geometric
    assert _names(recipe.photometric) == photometric
    assert recipe.geometric + recipe.photometric == recipe.steps
    assert recipe.photometric_stage().clip and not recipe.geometric_stage().clip


def test_stages_follow_overrides_and_nesting():
    recipe = registry.recipes.get("simclr", image_size=32, color_jitter_strength=0.0, blur=True)
    assert _names(recipe.photometric) == ["RandomGaussianBlur"]
    wrapped = A.RandomApply(A.RandomFlip(), 0.5)
    assert (
        wrapped.stage == "geometric" and A.RandomApply(A.RandomGrayscale()).stage == "photometric"
    )
    choice = A.RandomChoice([A.RandomFlip(), A.RandomRotation()])
    assert choice.stage == "geometric"


def test_plugin_layers_are_photometric_by_default():
    plugin = keras.layers.RandomBrightness(0.2)  # a layer that declares nothing
    pipeline = A.AugmentationPipeline([A.RandomResizedCrop(16), plugin])
    assert pipeline.photometric == [plugin]
    assert split_stages(plugin) == ([], [plugin])
    geometric, photometric = split_stages(A.RandomFlip())
    assert _names(geometric) == ["RandomFlip"] and photometric == []


def test_geometric_after_photometric_is_refused():
    pipeline = A.AugmentationPipeline([A.ColorDistortion(), A.RandomFlip()], name="mine")
    with pytest.raises(ValueError, match="geometric step RandomFlip comes after the photometric"):
        pipeline.photometric  # noqa: B018


def test_bad_stage_attribute_is_refused():
    class Odd(A.AugmentationLayer):
        stage = "somewhere"

    with pytest.raises(ValueError, match="Odd.stage is 'somewhere'"):
        A.AugmentationPipeline([Odd()]).photometric  # noqa: B018


@pytest.mark.parametrize(
    "layer",
    [
        registry.recipes.get("simclr", image_size=16).photometric_stage(),
        A.ColorDistortion(strength=0.5, impl="simclrv1", random_order=False),
        A.RandomChoice([A.RandomGrayscale(1.0), A.RandomSolarize(probability=1.0)]),
        A.RandomApply(A.RandomSolarize(probability=1.0), 0.5),
        A.RandomGaussianNoise(),
        A.SobelFilter(probability=0.5),
        A.RandomCutout(0.25),
    ],
    ids=["simclr_photometric", "jitter_v1", "choice", "apply", "noise", "sobel", "cutout"],
)
def test_accelerator_form_equals_cpu_form(layer):
    images = tf.random.stateless_uniform([12, 16, 16, 3], [2, 7])
    seed = tf.constant([3, 4], tf.int64)
    cpu = layer(images, training=True, seed=seed).numpy()
    on_device = DeviceBatch()
    dense = tf.function(lambda x: layer(x, training=True, seed=seed, device=on_device))
    dense = dense(images).numpy()
    np.testing.assert_allclose(dense, cpu, atol=2e-6)
    assert not np.allclose(cpu, images.numpy(), atol=1e-3)


def test_rows_of_a_global_batch_draw_that_batch_parameters():
    seed = tf.constant([5, 6], tf.int64)
    whole = uniform(seed, [8, 3], salt=1).numpy()
    rows = tf.constant([6, 1, 3])
    part = uniform(seed, [3, 3], salt=1, device=DeviceBatch(rows, 8)).numpy()
    scalar = uniform(seed, [], salt=1, device=DeviceBatch(rows, 8)).numpy()
    np.testing.assert_array_equal(part, whole[[6, 1, 3]])
    assert scalar == uniform(seed, [], salt=1).numpy()  # per-call draws are shared
    # A layer on rows 4..7 of a batch of 8 equals the last half of the whole batch.
    images = tf.random.stateless_uniform([8, 8, 8, 3], [1, 1])
    layer = registry.recipes.get("simclr", image_size=8).photometric_stage()
    full = layer(images, training=True, seed=seed, device=DeviceBatch()).numpy()
    half = layer(images[4:], training=True, seed=seed, device=DeviceBatch(tf.range(4, 8), 8))
    half = half.numpy()
    np.testing.assert_allclose(half, full[4:], atol=1e-6)
