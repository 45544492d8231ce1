"""A third-party plugin (augmentation layer, recipe, projection head, schedule) through every door.

The plugin is a throwaway distribution with entry points (`kclr.testing.plugins`), found by
`importlib.metadata` like a pip-installed one. Each component is used through the run
configuration of `kclr fit`, `ContrastiveTrainer.compile`, `kclr.data.pretraining_dataset`
/ `labelled_dataset` and `kclr augment preview`.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import yaml
from click.testing import CliRunner

from kclr import registry
from kclr.cli import main
from kclr.run import config, rundir
from kclr.run import fit as runs
from kclr.testing.plugins import installed_distribution
from kclr.trainer.callbacks import read_metrics

PLUGIN = """
import keras

from kclr import registry
from kclr.augment import AugmentationPipeline, CenterCrop


class Invert(keras.layers.Layer):
    '''Inverts every pixel: 1 - x.'''

    stage = "photometric"

    def call(self, images, training=None):
        return 1.0 - images


def invert_recipe(image_size, seed=None):
    '''Resize the whole image, then invert it.'''
    return AugmentationPipeline(
        [CenterCrop(image_size, crop_proportion=1.0), registry.augmentations.get("invert")],
        clip=True,
        seed=seed,
    )


invert_recipe.run_arguments = ("image_size",)


class TinyHead(keras.layers.Layer):
    '''One Dense layer: returns [features, projection].'''

    def __init__(self, output_dim=8, **kwargs):
        super().__init__(**kwargs)
        self.output_dim = output_dim
        self.dense = keras.layers.Dense(output_dim)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, features, training=None):
        return [features, self.dense(features)]

    def get_config(self):
        return {**super().get_config(), "output_dim": self.output_dim}


class StepDown(keras.optimizers.schedules.LearningRateSchedule):
    '''base x B/256, times `factor` from half the run on.'''

    run_arguments = ("global_batch_size", "total_steps")

    def __init__(self, base_learning_rate, global_batch_size, total_steps, factor=1.0):
        self.base_learning_rate = base_learning_rate
        self.global_batch_size = global_batch_size
        self.total_steps = total_steps
        self.factor = factor

    def __call__(self, step):
        rate = self.base_learning_rate * self.global_batch_size / 256.0
        late = keras.ops.cast(step, "float32") >= self.total_steps // 2
        return keras.ops.where(late, rate * self.factor, rate)

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "global_batch_size": self.global_batch_size,
            "total_steps": self.total_steps,
            "factor": self.factor,
        }
"""

ENTRY_POINTS = {
    "kclr.augmentations": {"invert": "doorplugin:Invert"},
    "kclr.recipes": {"invert_recipe": "doorplugin:invert_recipe"},
    "kclr.heads": {"tiny_head": "doorplugin:TinyHead"},
    "kclr.schedules": {"step_down": "doorplugin:StepDown"},
}

# 64 / 255 everywhere: the recipe inverts it to 191 / 255.
GRAY = 64


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    modules = {"doorplugin.py": PLUGIN}
    with installed_distribution(site, "kclr-door-plugin", ENTRY_POINTS, modules):
        yield site


def _gray_images(count=16, side=16):
    return np.full((count, side, side, 3), GRAY, np.uint8)


def test_every_component_is_discovered_from_the_plugin(plugin):
    for reg, name in [(registry.augmentations, "invert"), (registry.recipes, "invert_recipe"),
                      (registry.heads, "tiny_head"), (registry.schedules, "step_down")]:  # fmt: skip
        assert reg.entry(name).origin == "kclr-door-plugin"


def test_kclr_fit_config_uses_the_plugin_components(plugin, tmp_path):
    values = {
        "projection_head": {"name": "tiny_head", "config": {"output_dim": 8}},
        "schedule": {"name": "step_down", "config": {"base_learning_rate": 0.32}},
        "augmentation": {"name": "invert_recipe"},
        "train": {"export": False},
        "eval": {"monitor": False},
    }
    (tmp_path / "plugin.yaml").write_text(yaml.safe_dump(values))
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["fit", "--preset", "tiny", "--config", str(tmp_path / "plugin.yaml"),
         "--out", str(out), "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # The schedule got the run's batch size (tiny: 8): 0.32 x 8 / 256 = 0.01.
    rows = read_metrics(out / rundir.METRICS_FILE)
    assert rows and all(row["learning_rate"] == pytest.approx(0.01) for row in rows)
    saved = yaml.safe_load((out / rundir.CONFIG_FILE).read_text())
    assert saved["projection_head"] == {"name": "tiny_head", "config": {"output_dim": 8}}
    assert saved["augmentation"]["name"] == "invert_recipe"
    # The same config builds the plugin head and the plugin recipe, with the run's image size.
    cfg = config.from_dict(saved)
    _, head = runs.build_models(cfg)
    assert type(head).__name__ == "TinyHead" and head.output_dim == 8
    recipe = runs.build(cfg, "augmentation")
    assert [type(s).__name__ for s in recipe.steps] == ["CenterCrop", "Invert"]
    assert recipe.steps[0].height == cfg.data.image_size


def test_config_refuses_a_run_argument_the_plugin_declares(plugin):
    with pytest.raises(
        config.ConfigError, match=r"`schedule.config.total_steps` is set by the run"
    ):
        config.resolve("tiny", values={"schedule": {"name": "step_down",
                                                    "config": {"base_learning_rate": 0.1,
                                                               "total_steps": 3}}})  # fmt: skip


def test_compile_and_pretraining_dataset_use_the_plugin_components(plugin):
    from kclr import data
    from kclr.trainer import ContrastiveTrainer

    dataset = data.pretraining_dataset(
        (_gray_images(), np.zeros(16, np.int32)), recipe="invert_recipe", image_size=8,
        global_batch_size=8, views=2, photometric="host", seed=0,
    )  # fmt: skip
    views = next(iter(dataset))["views"]
    assert views.shape == (8, 2, 8, 8, 3)  # [B, V, S, S, 3]
    np.testing.assert_allclose(views.numpy(), 1.0 - GRAY / 255.0, atol=2e-3)

    encoder = registry.encoders.get(
        "resnet", depth=18, width_multiplier=0.125, input_shape=(8, 8, 3)
    )
    trainer = ContrastiveTrainer(encoder, registry.heads.get("tiny_head", output_dim=8))
    schedule = {"name": "step_down", "config": {"base_learning_rate": 0.32, "global_batch_size": 8,
                                                "total_steps": 4, "factor": 0.5}}  # fmt: skip
    trainer.compile(
        optimizer={"name": "sgd", "config": {"learning_rate": schedule, "momentum": 0.9}},
        loss="ntxent",
        jit_compile=False,
    )
    assert type(trainer.optimizer.learning_rate).__name__ != "StepDown"  # the current value
    learning_rate = trainer.optimizer._learning_rate  # noqa: SLF001 - Keras holds the schedule
    assert type(learning_rate).__name__ == "StepDown"
    assert [float(learning_rate(s)) for s in (0, 1, 2, 3)] == pytest.approx(
        [0.01, 0.01, 0.005, 0.005]
    )
    history = trainer.fit(dataset.take(2), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    hiddens = trainer.projection_head(encoder(tf.zeros((2, 8, 8, 3))))
    assert hiddens[-1].shape == (2, 8)


def test_labelled_dataset_uses_the_plugin_recipe(plugin):
    from kclr import data

    dataset = data.labelled_dataset(
        (_gray_images(4), np.arange(4, dtype=np.int32)), recipe="invert_recipe",
        image_size=8, batch_size=4,
    )  # fmt: skip
    images, labels = next(iter(dataset))
    assert images.shape == (4, 8, 8, 3) and labels.numpy().tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(images.numpy(), 1.0 - GRAY / 255.0, atol=2e-3)


def test_augment_preview_uses_the_plugin_recipe(plugin, tmp_path):
    image = tmp_path / "gray.png"
    tf.io.write_file(str(image), tf.io.encode_png(tf.constant(_gray_images(1, 32)[0])))
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(
        main,
        ["augment", "preview", str(image), "--recipe", "invert_recipe", "--views", "2",
         "--image-size", "16", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    grid = tf.io.decode_png(tf.io.read_file(str(out))).numpy()
    inverted = np.abs(grid.astype(int) - (255 - GRAY)) <= 1
    assert inverted.all(axis=-1).sum() == 2 * 16 * 16  # two views, all inverted
    unknown = CliRunner().invoke(main, ["augment", "preview", str(image), "--recipe", "invrt"])
    assert unknown.exit_code != 0 and "invert_recipe" in unknown.output
