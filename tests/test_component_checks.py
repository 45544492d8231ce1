"""kclr's own layers, recipes, losses and heads pass the round-trip checks of `kclr.testing`.

Every built-in entry of the four registries is listed here with a non-default value for
every constructor argument: a new built-in without a row fails `test_every_builtin_has_a_row`.
"""

from __future__ import annotations

import pytest

import kclr.augment as A
from kclr import registry
from kclr.testing import check_head, check_layer, check_loss, check_recipe

# fmt: off
LAYERS = {
    "augmentation_pipeline": lambda: {
        "steps": [A.RandomFlip(probability=0.9), A.RandomGrayscale(0.7)], "clip": False, "seed": 1,
    },
    "center_crop": lambda: {
        "height": 12, "width": 10, "crop_proportion": 0.5, "interpolation": "bilinear", "seed": 1,
    },
    "color_distortion": lambda: {
        "strength": 0.5, "brightness": 0.3, "contrast": 0.2, "saturation": 0.1, "hue": 0.05,
        "probability": 0.9, "random_order": False, "impl": "simclrv1", "seed": 1,
    },
    "multi_view": lambda: {"augmenter": A.RandomFlip(probability=0.9), "views": 3, "seed": 1},
    "random_apply": lambda: {"layer": A.RandomGrayscale(1.0), "probability": 0.6, "seed": 1},
    "random_choice": lambda: {
        "layers": [A.RandomGrayscale(1.0), A.RandomSolarize(probability=1.0)],
        "probabilities": [0.3, 0.7], "seed": 1,
    },
    "random_cutout": lambda: {"size": 0.25, "fill_value": 0.5, "probability": 0.9, "seed": 1},
    "random_flip": lambda: {"mode": "vertical", "probability": 0.9, "seed": 1},
    "random_gaussian_blur": lambda: {
        "kernel_size": 5, "kernel_fraction": 0.2, "sigma_range": [0.5, 1.5], "probability": 0.9,
        "per_image_sigma": False, "seed": 1,
    },
    "random_gaussian_noise": lambda: {"stddev_range": [0.05, 0.2], "probability": 0.9, "seed": 1},
    "random_grayscale": lambda: {"probability": 0.7, "seed": 1},
    "random_resized_crop": lambda: {
        "height": 12, "width": 10, "area_range": [0.3, 0.9], "aspect_ratio_range": [0.5, 2.0],
        "min_object_covered": 0.2, "attempts": 7, "semantics": "torchvision",
        "interpolation": "bilinear", "seed": 1,
    },
    "random_rotation": lambda: {"angles": [90], "probability": 0.9, "seed": 1},
    "random_solarize": lambda: {"threshold": 0.3, "probability": 0.9, "seed": 1},
    "sobel_filter": lambda: {"probability": 0.9, "seed": 1},
}

_SIMCLR = {
    "color_jitter_strength": 0.5, "brightness": 0.3, "contrast": 0.2, "saturation": 0.1,
    "hue": 0.05, "color_jitter_probability": 0.9, "brightness_impl": "simclrv1",
    "random_order": False, "grayscale_probability": 0.3, "area_range": [0.3, 0.9],
    "aspect_ratio_range": [0.5, 2.0], "min_object_covered": 0.2, "crop_attempts": 7,
    "crop_semantics": "torchvision", "interpolation": "bilinear", "flip_probability": 0.9,
    "blur": False, "blur_probability": 0.9, "blur_sigma_range": [0.5, 1.5],
    "per_image_sigma": False, "seed": 1,
}
RECIPES = {
    "simclr": _SIMCLR,
    "simclr_cifar": _SIMCLR,
    "supcon_cifar": _SIMCLR,
    "finetune": _SIMCLR,
    "eval": {"crop_proportion": 0.5, "interpolation": "bilinear", "seed": 1},
}

LOSSES = {
    "margin_triplet": {"margin": 0.5, "semi_hard": True, "normalize": False},
    "nt_logistic": {"temperature": 0.2, "semi_hard": True, "normalize": False},
    "ntxent": {"temperature": 0.2, "normalize": False},
    "supcon": {
        "temperature": 0.2, "base_temperature": 0.1, "contrast_mode": "one",
        "summation": "inside", "normalize": False, "queue_size": 8,
    },
}

HEADS = {
    "projection_head": {"version": "v1", "output_dim": 6, "hidden_dim": 12, "sync_bn": False},
    "supervised_head": {"num_classes": 5, "name": "head_five"},
}
# fmt: on

KINDS = {"augmentations": LAYERS, "recipes": RECIPES, "losses": LOSSES, "heads": HEADS}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_builtin_has_a_row(kind):
    builtins = {e.name for e in registry.REGISTRIES[kind].entries() if e.is_builtin}
    assert builtins == set(KINDS[kind])


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_builtin_layer_keeps_every_argument(name):
    check_layer(name, LAYERS[name]())


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_builtin_recipe_keeps_every_argument(name):
    check_recipe(name, RECIPES[name], image_size=16)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_builtin_loss_keeps_every_argument(name):
    check_loss(name, LOSSES[name])


@pytest.mark.parametrize("name", sorted(HEADS))
def test_builtin_head_keeps_every_argument(name):
    check_head(name, HEADS[name])
