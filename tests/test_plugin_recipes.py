"""A plugin layer and a plugin recipe that extends a built-in one by name.

The plugin is a throwaway distribution (`kclr.testing.plugins`): `random_posterize`, a
`simclr_posterize` recipe (`extends = "simclr_cifar"`), and two mistakes a plugin author
makes: a layer whose `get_config` forgets an argument, and an `extends` kclr cannot read.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from kclr import config, registry, spec
from kclr.cli import main
from kclr.registry import PluginWarning
from kclr.testing import (
    ComponentCheckError,
    check_augmentation_layer,
    check_layer,
    check_recipe,
)
from kclr.testing.plugins import installed_distribution

PLUGIN = """
import tensorflow as tf

import kclr.augment
from kclr import registry


class RandomPosterize(kclr.augment.AugmentationLayer):
    '''Keeps the `bits` high bits of each channel, per image with `probability`.'''

    def __init__(self, bits=4, probability=0.5, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not 1 <= int(bits) <= 8:
            raise ValueError(f"RandomPosterize: bits must be in 1..8; received {bits}.")
        self.bits = int(bits)
        self.probability = float(probability)

    def get_random_transformation(self, images, seed, device=None):
        batch = tf.shape(images)[0]
        return kclr.augment.bernoulli(seed, batch, self.probability, device=device)

    def transform_images(self, images, transformation, device=None):
        levels = 2.0**self.bits
        posterized = tf.floor(images * (levels - 1e-3)) / (levels - 1.0)
        return kclr.augment.select(transformation, posterized, images)

    def get_config(self):
        return {**super().get_config(), "bits": self.bits, "probability": self.probability}


class ForgetfulPosterize(RandomPosterize):
    '''A posterize layer whose get_config forgets `probability`.'''

    def get_config(self):
        config = super().get_config()
        del config["probability"]
        return config


def simclr_posterize(image_size, bits=4, posterize_probability=0.5, **overrides):
    '''simclr_cifar, then posterize.'''
    augmenter = registry.recipes.get("simclr_cifar", image_size=image_size, **overrides)
    posterize = RandomPosterize(bits=bits, probability=posterize_probability)
    return kclr.augment.AugmentationPipeline(
        [*augmenter.steps, posterize], clip=True, seed=augmenter.seed
    )


simclr_posterize.run_arguments = ("image_size",)
simclr_posterize.extends = "simclr_cifar"


def strange_recipe(image_size, **overrides):
    '''An `extends` kclr cannot read.'''


strange_recipe.extends = 3
"""

ENTRY_POINTS = {
    "kclr.augmentations": {
        "random_posterize": "posterizeplugin:RandomPosterize",
        "forgetful_posterize": "posterizeplugin:ForgetfulPosterize",
    },
    "kclr.recipes": {
        "simclr_posterize": "posterizeplugin:simclr_posterize",
        "strange_recipe": "posterizeplugin:strange_recipe",
    },
}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    modules = {"posterizeplugin.py": PLUGIN}
    with installed_distribution(site, "kclr-posterize-test", ENTRY_POINTS, modules):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            registry.recipes.names()
        yield [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]


def test_an_extends_kclr_cannot_read_is_refused_at_registration(plugin):
    assert "strange_recipe" not in registry.recipes
    (message,) = [m for m in plugin if "strange_recipe" in m]
    assert "Refused recipe 'strange_recipe' from 'kclr-posterize-test'" in message
    assert "strange_recipe.extends is 3 (int)" in message
    assert "extends = 'simclr_cifar'" in message


def test_extends_by_name_accepts_the_extended_recipes_arguments(plugin):
    accepted, open_ended = spec.accepted_arguments(
        registry.recipes.get_class("simclr_posterize"), registry.recipes
    )
    assert not open_ended
    assert {"bits", "posterize_probability", "color_jitter_strength", "brightness_impl"} <= accepted
    cfg = config.resolve("tiny", overrides=[
        "augmentation.name=simclr_posterize", "augmentation.config.bits=2",
        "augmentation.config.brightness_impl=simclrv1",
    ])  # fmt: skip
    assert cfg.augmentation == {
        "name": "simclr_posterize",
        "config": {"bits": 2, "brightness_impl": "simclrv1"},
    }


def test_a_typo_in_a_plugin_recipe_config_names_the_plugin_recipe(plugin):
    with pytest.raises(config.ConfigError) as error:
        config.resolve("tiny", overrides=[
            "augmentation.name=simclr_posterize", "augmentation.config.bits_mn=2",
        ])  # fmt: skip
    message = str(error.value)
    assert "Unknown argument `augmentation.config.bits_mn` for recipe 'simclr_posterize'" in message
    assert "Did you mean 'augmentation.config.bits'?" in message
    accepted = message.split("'simclr_posterize' accepts: ")[1]
    assert "bits, blur" in accepted and "posterize_probability" in accepted
    assert "image_size" not in accepted  # supplied by the run


def test_an_extends_naming_an_unknown_recipe_is_an_error(plugin):
    def lost(image_size, **overrides):
        """Extends a recipe nobody registered."""

    lost.extends = "simclr_cifr"
    with pytest.raises(spec.SpecError, match=r"lost.extends names the recipe 'simclr_cifr', "
                       r"which is not registered. Did you mean 'simclr_cifar'\?"):  # fmt: skip
        spec.accepted_arguments(lost, registry.recipes)


@pytest.mark.parametrize(
    "setting, expected",
    [
        ("augmentation.config.bits_mn=2", "Did you mean 'augmentation.config.bits'?"),
        ("augmentation.config.bits=0", "RandomPosterize: bits must be in 1..8; received 0."),
    ],
)
def test_kclr_fit_config_error_leaves_no_run_directory(plugin, tmp_path, monkeypatch, setting,
                                                       expected):  # fmt: skip
    """A config error (unknown key, or a value the layer refuses) comes before any file."""
    monkeypatch.chdir(tmp_path)
    existing = tmp_path / "existing"
    existing.mkdir()
    for out in ([], ["--out", str(existing)]):
        result = CliRunner().invoke(main, [
            "fit", "--preset", "tiny", "--set", "augmentation.name=simclr_posterize",
            "--set", setting, "-q", *out,
        ])  # fmt: skip
        assert result.exit_code == 1, result.output
        assert expected in result.output
        assert "Training" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]  # no runs/
    assert list(existing.iterdir()) == []  # not even a lock file


def test_run_fit_config_error_leaves_no_run_directory(plugin, tmp_path):
    from kclr.run import fit as runs

    cfg = config.resolve("tiny", overrides=[
        "augmentation.name=simclr_posterize", "augmentation.config.bits=9",
    ])  # fmt: skip
    with pytest.raises(ValueError, match="bits must be in 1..8; received 9"):
        runs.fit(cfg, out=tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_the_plugin_layer_and_recipe_pass_the_checks(plugin):
    layer = registry.augmentations.get_class("random_posterize")
    check_layer("random_posterize", {"bits": 2, "probability": 0.9, "seed": 3})
    check_augmentation_layer(lambda seed: layer(bits=2, probability=0.9, seed=seed))
    check_recipe("simclr_posterize", {"bits": 2, "posterize_probability": 0.9, "seed": 1},
                 skip=_SIMCLR_ARGUMENTS)  # fmt: skip
    augmenter = registry.recipes.get("simclr_posterize", image_size=16, bits=1,
                                     posterize_probability=1.0)  # fmt: skip
    views = augmenter(np.random.default_rng(0).uniform(size=(4, 24, 24, 3)), training=True)
    assert set(np.unique(np.round(views.numpy(), 4))) <= {0.0, 1.0}  # one bit: 0 or 1


_SIMCLR_ARGUMENTS = [
    name for name in spec.accepted_arguments(registry.recipes.get_class("simclr"))[0]
    if name != "image_size"
]  # fmt: skip


def test_a_layer_whose_get_config_forgets_an_argument_fails_the_check_by_name(plugin):
    with pytest.raises(ComponentCheckError) as error:
        check_layer("forgetful_posterize", {"bits": 2, "probability": 0.9, "seed": 3})
    message = str(error.value)
    assert message.startswith("check_layer(ForgetfulPosterize): get_config(): `probability` is "
                              "missing from the config")  # fmt: skip
    assert "built with probability=0.9" in message
    # The older contract check compares two configs that both lack the key: it passes.
    layer = registry.augmentations.get_class("forgetful_posterize")
    check_augmentation_layer(lambda seed: layer(bits=2, probability=0.9, seed=seed))


def test_the_check_asks_for_every_argument_and_a_non_default_value(plugin):
    with pytest.raises(ComponentCheckError, match=r"missing: probability, seed"):
        check_layer("random_posterize", {"bits": 2})
    with pytest.raises(ComponentCheckError, match=r"`bits=4` is RandomPosterize's default"):
        check_layer("random_posterize", {"bits": 4, "probability": 0.9, "seed": 3})
