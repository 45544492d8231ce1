"""The `kclr-posterize` distribution of plugins/README.md, installed and used as a user would.

The layer, the recipe and the tests are read from plugins/README.md itself, so the walkthrough
is the code under test. A second module adds two mistakes a plugin author makes: a layer whose
`get_config` forgets an argument, and an `extends` kclr cannot read.
"""

from __future__ import annotations

import ast
import pathlib
import sys
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from kclr import registry, spec
from kclr.cli import main
from kclr.registry import PluginWarning
from kclr.run import config
from kclr.testing import ComponentCheckError, check_augmentation_layer, check_layer
from kclr.testing.plugins import installed_distribution

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from markdown_blocks import files  # noqa: E402

README = pathlib.Path(__file__).resolve().parents[1] / "plugins" / "README.md"
FILES = files(README)  # {"src/kclr_posterize/__init__.py": ..., "tests/test_posterize.py": ...}
README_TESTS = FILES["tests/test_posterize.py"]

MISTAKES = '''
from kclr_posterize import RandomPosterize


class ForgetfulPosterize(RandomPosterize):
    """A posterize layer whose get_config forgets `probability`."""

    def get_config(self):
        config = super().get_config()
        del config["probability"]
        return config


def strange_recipe(image_size, **overrides):
    """An `extends` kclr cannot read."""


strange_recipe.extends = 3
'''

ENTRY_POINTS = {
    "kclr.augmentations": {
        "random_posterize": "kclr_posterize:RandomPosterize",
        "forgetful_posterize": "posterize_mistakes:ForgetfulPosterize",
    },
    "kclr.recipes": {
        "simclr_posterize": "kclr_posterize:simclr_posterize",
        "strange_recipe": "posterize_mistakes:strange_recipe",
    },
}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    modules = {
        "kclr_posterize.py": FILES["src/kclr_posterize/__init__.py"],
        "posterize_mistakes.py": MISTAKES,
    }
    with installed_distribution(site, "kclr-posterize", ENTRY_POINTS, modules):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            registry.recipes.names()
        yield [str(w.message) for w in caught if issubclass(w.category, PluginWarning)]


def test_an_extends_kclr_cannot_read_is_refused_at_registration(plugin):
    assert "strange_recipe" not in registry.recipes
    (message,) = [m for m in plugin if "strange_recipe" in m]
    assert "Refused recipe 'strange_recipe' from 'kclr-posterize'" in message
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


def _test_names(code: str) -> list[str]:
    return [n.name for n in ast.parse(code).body
            if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]  # fmt: skip


@pytest.mark.parametrize("name", _test_names(README_TESTS))
def test_the_readme_tests_pass(plugin, name):
    """plugins/README.md's tests/test_posterize.py, run against its own distribution."""
    namespace: dict = {"__name__": "test_posterize"}
    exec(compile(README_TESTS, "tests/test_posterize.py", "exec"), namespace)  # noqa: S102
    namespace[name]()


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


def test_a_plugin_recipe_spec_works_in_the_data_api(plugin):
    """`pretraining_dataset` takes the spec the docs show (`labelled_dataset` reads it the same way)."""
    from kclr import data

    source = (np.full((8, 24, 24, 3), 200, np.uint8), np.arange(8, dtype=np.int32))
    posterize = {  # an argument of its own, and one of simclr_cifar (no colour: a fast trace)
        "name": "simclr_posterize",
        "config": {"bits": 1, "posterize_probability": 1.0, "color_jitter_strength": 0.0},
    }
    views = data.pretraining_dataset(
        source, recipe=posterize, image_size=16, views=2, global_batch_size=4, seed=0,
        photometric="host",
    )  # fmt: skip
    batch = next(iter(views))["views"].numpy()
    assert batch.shape == (4, 2, 16, 16, 3)
    assert set(np.unique(np.round(batch * 255))) <= {0.0, 128.0}  # one bit: 0 or 128
    with pytest.raises(spec.SpecError, match=r"for recipe 'simclr_posterize'. Did you mean "
                       r"'recipe.config.bits'\?"):  # fmt: skip
        data.pretraining_dataset(source, recipe={"name": "simclr_posterize",
                                                 "config": {"bits_mn": 1}},
                                 image_size=16, global_batch_size=4)  # fmt: skip
