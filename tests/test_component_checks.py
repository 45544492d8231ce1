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
    "per_view": lambda: {
        "stages": [A.RandomGrayscale(0.7), A.RandomSolarize(probability=0.9)], "seed": 1,
    },
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
_BYOL = {key: value for key, value in _SIMCLR.items() if key not in ("blur", "blur_probability")}
RECIPES = {
    "byol": {
        **_BYOL, "blur_probabilities": [0.9, 0.3], "solarize_probabilities": [0.1, 0.6],
        "solarize_threshold": 0.4,
    },
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
    "supervised_head": {"num_classes": 5, "name": "head_five", "dtype": "float64"},
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


# ------------------------------------------------------- each check names a lost argument
class ForgetfulNTXent(registry.losses.get_class("ntxent")):
    """NT-Xent whose get_config forgets `temperature`."""

    def get_config(self):
        return {k: v for k, v in super().get_config().items() if k != "temperature"}


class ForgetfulHead(registry.heads.get_class("projection_head")):
    """A projection head whose get_config forgets `output_dim`."""

    def get_config(self):
        return {k: v for k, v in super().get_config().items() if k != "output_dim"}


class ForgetfulFlip(A.RandomFlip):
    """A flip whose get_config forgets `probability`."""

    def get_config(self):
        return {k: v for k, v in super().get_config().items() if k != "probability"}


def forgetful_recipe(image_size, flip_probability=0.5, seed=None):
    """Resize, then a flip whose probability the saved pipeline forgets."""
    steps = [
        A.CenterCrop(image_size, crop_proportion=1.0),
        ForgetfulFlip(probability=flip_probability),
    ]
    return A.AugmentationPipeline(steps, seed=seed)


@pytest.fixture
def forgetful():
    registry.losses.add("forgetful_ntxent", ForgetfulNTXent, origin="kclr-forgetful")
    registry.heads.add("forgetful_head", ForgetfulHead, origin="kclr-forgetful")
    registry.recipes.add("forgetful_recipe", forgetful_recipe, origin="kclr-forgetful")
    registry.augmentations.add("forgetful_flip", ForgetfulFlip, origin="kclr-forgetful")
    yield
    for reg in (registry.losses, registry.heads, registry.recipes, registry.augmentations):
        reg.reset()


def test_check_loss_names_the_lost_argument(forgetful):
    with pytest.raises(AssertionError, match=r"^check_loss\(ForgetfulNTXent\): get_config\(\): "
                       r"`temperature` is missing from the config"):  # fmt: skip
        check_loss(ForgetfulNTXent, {"temperature": 0.2, "normalize": False})


def test_check_head_names_the_lost_argument(forgetful):
    with pytest.raises(AssertionError, match=r"^check_head\(ForgetfulHead\): get_config\(\): "
                       r"`output_dim` is missing from the config"):  # fmt: skip
        check_head(ForgetfulHead, HEADS["projection_head"])


def test_check_recipe_names_the_argument_its_augmenter_loses(forgetful):
    """The recipe's arguments are not in any config: the check compares behaviour, then
    tries each argument alone to name the one that is lost."""
    with pytest.raises(AssertionError) as error:
        check_recipe("forgetful_recipe", {"flip_probability": 1.0, "seed": 1})
    message = str(error.value)
    assert message.startswith("check_recipe('forgetful_recipe'): the augmenter it builds is not "
                              "the same after a round trip; lost with flip_probability.")  # fmt: skip
    assert "from_config(get_config()): behaves differently" in message
