"""The arguments a run supplies are declared once, on the component, and read the same at every door."""

from __future__ import annotations

import keras
import pytest

from kclr import registry, spec
from kclr.optimizers import LARS, WarmupCosineDecay
from kclr.run import config
from kclr.run import fit as runs


def test_components_declare_their_run_arguments():
    assert spec.run_arguments(registry.schedules, "warmup_cosine") == (
        "global_batch_size", "num_examples", "epochs", "total_steps",
    )  # fmt: skip
    assert WarmupCosineDecay.run_arguments == spec.run_arguments(
        registry.schedules, "warmup_cosine"
    )
    assert (
        spec.run_arguments(registry.optimizers, "lars") == LARS.run_arguments == ("learning_rate",)
    )
    # Keras's own optimizers declare nothing: the registry's default applies.
    assert spec.run_arguments(registry.optimizers, "sgd") == ("learning_rate",)
    for name in ("simclr", "simclr_cifar", "supcon_cifar", "finetune", "eval"):
        assert spec.run_arguments(registry.recipes, name) == ("image_size",)
    assert spec.run_arguments(registry.losses, "ntxent") == ()


def _config_and_compile_optimizers():
    cfg = config.resolve(
        "tiny",
        values={"schedule": {"name": "warmup_cosine",
                             "config": {"base_learning_rate": 0.2, "warmup_epochs": 1}}},
    )  # fmt: skip
    plan = runs.plan(cfg, num_examples=64)
    through_config = runs.build_optimizer(cfg, plan)
    schedule = {
        "name": "warmup_cosine",
        "config": {**cfg.schedule["config"], "global_batch_size": 8, "num_examples": 64,
                   "epochs": cfg.train.epochs, "total_steps": plan.total_steps},
    }  # fmt: skip
    optimizer = {"name": "lars", "config": {**cfg.optimizer["config"], "learning_rate": schedule}}
    through_compile = spec.build_optimizer(registry.optimizers, registry.schedules, optimizer)
    return through_config, through_compile


def test_the_same_spec_builds_the_same_optimizer_through_config_and_compile():
    through_config, through_compile = _config_and_compile_optimizers()
    assert type(through_config) is type(through_compile) is LARS
    assert through_config.get_config() == through_compile.get_config()
    config_schedule = through_config._learning_rate  # noqa: SLF001 - Keras holds the schedule
    compile_schedule = through_compile._learning_rate  # noqa: SLF001
    assert config_schedule.get_config() == compile_schedule.get_config()
    assert config_schedule.get_config()["global_batch_size"] == 8
    assert [float(config_schedule(s)) for s in (0, 4, 8)] == pytest.approx(
        [float(compile_schedule(s)) for s in (0, 4, 8)]
    )


def test_trainer_compile_goes_through_the_same_door():
    from kclr.trainer import ContrastiveTrainer

    _, expected = _config_and_compile_optimizers()
    encoder = registry.encoders.get(
        "resnet", depth=18, width_multiplier=0.125, input_shape=(8, 8, 3)
    )
    trainer = ContrastiveTrainer(encoder, registry.heads.get("projection_head", output_dim=4))
    schedule = expected._learning_rate.get_config()  # noqa: SLF001
    trainer.compile(
        optimizer={"name": "lars", "config": {
            "momentum": 0.9, "weight_decay": 1e-6,
            "learning_rate": {"name": "warmup_cosine", "config": schedule},
        }},
        loss="ntxent", jit_compile=False,
    )  # fmt: skip
    assert trainer.optimizer.get_config() == expected.get_config()


def test_a_run_argument_is_refused_where_the_run_supplies_it_and_needed_where_not():
    with pytest.raises(
        config.ConfigError,
        match=r"`schedule.config.global_batch_size` is set by the run, not by the spec "
        r"\(from `data.global_batch_size`\)",
    ):
        config.resolve("tiny", overrides=["schedule.config.global_batch_size=64"])
    with pytest.raises(config.ConfigError, match=r"`augmentation.config.image_size` is set by"):
        config.resolve("tiny", overrides=["augmentation.config.image_size=32"])
    # Without a run, nobody supplies it: the spec must, and the message names it.
    with pytest.raises(spec.SpecError, match=r"global_batch_size"):
        spec.build(registry.schedules, {"name": "warmup_cosine",
                                        "config": {"base_learning_rate": 0.1}}, "schedule")  # fmt: skip
    built = spec.build(
        registry.schedules,
        {"name": "constant", "config": {"base_learning_rate": 0.1}},
        "schedule",
        run={"global_batch_size": 512, "image_size": 32},  # image_size: not the schedule's
    )
    assert float(built(0)) == pytest.approx(0.2)


def test_recipes_are_checked_against_the_recipe_they_extend():
    layer = registry.recipes.get("simclr_cifar", image_size=16, blur=True, seed=3)
    assert type(layer.steps[-1]).__name__ == "RandomGaussianBlur"
    with pytest.raises(spec.SpecError, match=r"Did you mean 'recipe.config.blur_probability'"):
        registry.recipes.get("simclr_cifar", image_size=16, blur_probabilty=0.1)


def test_to_spec_is_the_inverse_of_build():
    layer = spec.build(
        registry.augmentations,
        {"name": "random_grayscale", "config": {"probability": 0.3}},
        "augmentation",
    )
    again = spec.to_spec(registry.augmentations, layer)
    assert again["name"] == "random_grayscale" and again["config"]["probability"] == 0.3
    rebuilt = spec.build(registry.augmentations, again, "augmentation")
    assert rebuilt.get_config() == layer.get_config()
    assert isinstance(rebuilt, keras.layers.Layer)
