"""Every key of every preset does something: changing it changes what a run builds or runs.

For each leaf key of each preset file, the key is changed to another valid value and
the run is resolved as `kclr fit` resolves it: the components are built through the
registry (loss, optimizer with its schedule, projection head, augmentation recipe,
evaluation protocols; the encoder's constructor arguments) and the `RunPlan` is made.
The built objects' `get_config()` and the plan must differ from the unchanged run's.
"""

from __future__ import annotations

import copy

import pytest

from kclr import presets, registry, spec
from kclr.run import config
from kclr.run import fit as runs

ALTERNATIVES = {
    "bilinear": "bicubic", "sqrt": "linear", "demo": "other-data", "tfds:cifar10": "demo",
    "resnet": "resnet18", "projection_head": "supervised_head", "ntxent": "supcon",
    "supcon_loss": "ntxent", "lars": "sgd", "sgd": "lars", "adam": "adamw",
    "warmup_cosine": "constant", "simclr": "finetune", "simclr_cifar": "simclr",
    "supcon_cifar": "simclr", "knn": "linear", "finetune": "linear",
    "keras_hub": "resnet", "ViTBackbone": "DeiTBackbone", "cls": "mean", "adamw": "adam",
    "moco_v3": "simclr", "moco_v3_mlp": "projection_head", "moco_lars": "lars", "byol": "simclr",
}  # fmt: skip
DESCRIPTIVE = {("description",)}  # shown by `kclr presets list`, not part of a run
NUM_EXAMPLES = 50_000


def _leaves(values, prefix=()):
    for key, value in values.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            yield from _leaves(value, path)
        else:
            yield path, value


def _changed(path, value):
    if path[-1] == "name" or isinstance(value, str):
        if path[0] == "loss" and path[-1] == "name":
            return "supcon" if value == "ntxent" else "ntxent"
        if path[-1] in ("scaling", "learning_rate_scaling"):
            return {"linear": "sqrt", "sqrt": "linear"}[value]
        if path[-1] == "version":
            return {"v1": "v2", "v2": "v1", "supcon": "v1", "linear": "v2"}[value]
        if path[0] in ("knn", "linear_eval", "finetune"):
            return {"knn": "linear", "linear": "knn", "finetune": "linear"}[value]
        return ALTERNATIVES[value]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value * 2 if path[-1] != "depth" else {18: 34, 50: 101}[value]
    if isinstance(value, float):
        return value / 2 if value else 0.5
    if isinstance(value, list):
        return [value[0] / 2 if value[0] else 0.5, *value[1:]]
    raise AssertionError(f"no alternative for {path}={value!r}")


def _set(values, path, new):
    cursor = values
    for part in path[:-1]:
        cursor = cursor[part]
    if path[-1] == "name" and len(path) == 2:
        # Another component: keep the arguments it accepts (a classifier head needs its size).
        reg = getattr(registry, config.COMPONENTS[path[0]].registry)
        accepted, _ = spec.accepted_arguments(reg.get_class(new))
        old = cursor.get("config") or {}
        cursor["config"] = {k: v for k, v in old.items() if k in accepted}
        if new == "supervised_head":
            cursor["config"] = {"num_classes": 3}
    cursor[path[-1]] = new


def _snapshot(cfg):
    """What a run builds and runs from `cfg` (cheap: no encoder weights, no data)."""
    run = runs.plan(cfg, NUM_EXAMPLES)
    encoder = spec.check(registry.encoders, cfg.encoder, "encoder")
    built = {
        "plan": run,
        "method": runs.build(cfg, "method", **runs.run_values(cfg, run)).get_config(),
        "encoder": encoder,
        "head": runs.build(cfg, "projection_head").get_config(),
        "loss": registry.losses.get(cfg.loss).get_config(),
        "optimizer": runs.build_optimizer(cfg, run).get_config(),
        "augmentation": runs.build(
            cfg, "augmentation", image_size=cfg.data.image_size
        ).get_config(),
        "data_source": (cfg.data.source, cfg.data.eval_source),
    }
    for section in ("knn", "linear_eval", "finetune"):
        built[section] = runs.build(cfg, section).get_config()
    return built


@pytest.mark.parametrize("name", presets.names())
def test_changing_any_preset_key_changes_the_run(name):
    raw = presets.get(name)
    base = _snapshot(config.resolve(name))
    checked = 0
    for path, value in _leaves(raw):
        if path in DESCRIPTIVE:
            continue
        values = copy.deepcopy(raw)
        _set(values, path, _changed(path, value))
        cfg = config.resolve(values={**values})
        assert _snapshot(cfg) != base, f"{name}: changing {'.'.join(path)} changed nothing"
        checked += 1
    assert checked >= 10


def test_encoder_arguments_are_what_the_encoder_is_built_with():
    cfg = config.resolve("tiny", overrides=["encoder.config.cifar_stem=true"])
    encoder, head = runs.build_models(cfg)
    assert encoder.get_config() | cfg.encoder["config"] == encoder.get_config()
    assert head.get_config() | cfg.projection_head["config"] == head.get_config()


def test_ft_proj_selector_reaches_the_finetune_protocol_not_the_pretraining_trainer():
    # The pretraining trainer of `kclr fit` has no supervised head, so the key acts in the
    # fine-tuning protocol only (tests/evaluation: it changes the fine-tuned classifier).
    import tensorflow as tf

    overrides = [
        "encoder.config.depth=18", "encoder.config.width_multiplier=0.125",
        "projection_head.config.sync_bn=false", "encoder.config.sync_bn=false",
        "data.global_batch_size=8", "data.image_size=16",
    ]  # fmt: skip
    cfg = config.resolve("simclr_v2_r50", overrides=overrides)
    assert cfg.finetune["config"]["ft_proj_selector"] == 1
    assert runs.build(cfg, "finetune").ft_proj_selector == 1
    other = config.resolve(
        "simclr_v2_r50", overrides=[*overrides, "finetune.config.ft_proj_selector=0"]
    )
    assert runs.build(other, "finetune").ft_proj_selector == 0
    trainer = runs.build_trainer(cfg, runs.plan(cfg, 64), tf.distribute.get_strategy())
    assert trainer.supervised_head is None and trainer.ft_proj_selector == 0
