"""Preset resolution, overrides from the command line and files, and their errors."""

from __future__ import annotations

import json
import math

import pytest

from kclr import presets
from kclr.run import config


def test_every_preset_resolves_and_round_trips():
    for name in presets.names():
        cfg = config.resolve(name)
        assert cfg.preset == name
        assert presets.describe(name)
        again = config.from_dict(config.to_dict(cfg))
        assert config.to_dict(again) == config.to_dict(cfg)


def test_expected_presets_exist():
    expected = {
        "simclr_r50", "simclr_r50_2x", "simclr_r50_4x", "simclr_v2_r50", "supcon_r50",
        "simclr_cifar10_r18", "supcon_cifar10_r50", "demo", "tiny",
    }  # fmt: skip
    assert expected <= set(presets.names())


def test_simclr_r50_is_the_paper_recipe():
    cfg = config.resolve("simclr_r50")
    assert cfg.data.global_batch_size == 4096
    assert cfg.optimizer == {"name": "lars", "config": {"momentum": 0.9, "weight_decay": 1e-6}}
    assert cfg.schedule == {
        "name": "warmup_cosine",
        "config": {"base_learning_rate": 0.3, "scaling": "linear", "warmup_epochs": 10},
    }
    assert cfg.loss == {"name": "ntxent", "config": {"temperature": 0.1}}
    assert cfg.projection_head["config"]["version"] == "v1"
    assert cfg.encoder["config"]["depth"] == 50
    assert cfg.augmentation["name"] == "simclr"  # with blur
    # Peak LR 0.3 x 4096 / 256 = 4.8 (official schedule).
    peak = cfg.schedule["config"]["base_learning_rate"] * cfg.data.global_batch_size / 256
    assert math.isclose(peak, 4.8)
    assert config.resolve("simclr_r50_2x").encoder["config"]["width_multiplier"] == 2.0
    assert config.resolve("simclr_r50_4x").encoder["config"]["width_multiplier"] == 4.0


def test_v2_supcon_and_cifar_presets():
    v2 = config.resolve("simclr_v2_r50")
    assert v2.projection_head["config"]["version"] == "v2"
    assert v2.schedule["config"]["scaling"] == "sqrt"
    assert v2.optimizer["config"]["weight_decay"] == 1e-4
    assert math.isclose(v2.schedule["config"]["base_learning_rate"] * math.sqrt(4096), 6.4)
    assert v2.finetune["config"]["ft_proj_selector"] == 1
    supcon = config.resolve("supcon_r50")
    assert supcon.loss == {
        "name": "supcon",
        "config": {"temperature": 0.1, "base_temperature": 1.0},
    }
    assert supcon.optimizer["name"] == "lars"
    cifar = config.resolve("simclr_cifar10_r18")
    assert cifar.encoder["config"] == {"depth": 18, "width_multiplier": 1.0, "cifar_stem": True}
    assert cifar.data.image_size == 32 and cifar.augmentation["name"] == "simclr_cifar"
    assert cifar.loss["config"]["temperature"] == 0.5
    sc = config.resolve("supcon_cifar10_r50")
    # HobbitLong: SGD lr 0.5 at batch 1024.
    base = sc.schedule["config"]["base_learning_rate"]
    assert math.isclose(base * sc.data.global_batch_size / 256, 0.5)
    assert sc.optimizer["name"] == "sgd" and sc.projection_head["config"]["version"] == "supcon"
    assert sc.linear_eval["config"]["learning_rate"] == 2.5


def test_command_line_overrides_reach_any_key_of_any_spec():
    cfg = config.resolve(
        "simclr_r50",
        overrides=[
            "optimizer.config.momentum=0.95",
            "schedule.config.base_learning_rate=0.5",
            "data.global_batch_size=256",
            "encoder.config.cifar_stem=true",
            "projection_head.config.hidden_dim=null",
            "augmentation.config={color_jitter_strength: 0.5, blur: false}",
            "linear_eval.config.epochs=30",
        ],
    )
    assert cfg.optimizer["config"] == {"momentum": 0.95, "weight_decay": 1e-6}
    assert cfg.schedule["config"]["base_learning_rate"] == 0.5
    assert cfg.data.global_batch_size == 256 and isinstance(cfg.data.global_batch_size, int)
    assert cfg.encoder["config"]["cifar_stem"] is True
    assert cfg.projection_head["config"]["hidden_dim"] is None
    assert cfg.augmentation["config"] == {"color_jitter_strength": 0.5, "blur": False}
    assert cfg.linear_eval["config"]["epochs"] == 30
    # Naming another component replaces the spec (the old arguments would not fit it).
    adam = config.resolve("simclr_r50", overrides=["optimizer.name=adam"])
    assert adam.optimizer == {"name": "adam", "config": {}}


def test_a_key_inside_a_nested_argument_keeps_its_siblings():
    # A keras-hub backbone's arguments are a dict inside the spec's config: setting one key
    # there changes that key only.
    cfg = config.resolve(
        "simclr_vit",
        overrides=["encoder.config.config.num_layers=2", "encoder.config.config.hidden_dim=32"],
    )
    assert cfg.encoder["config"]["config"] == {
        "patch_size": 16, "num_layers": 2, "num_heads": 12, "hidden_dim": 32, "mlp_dim": 3072,
    }  # fmt: skip
    assert cfg.encoder["config"]["class_name"] == "ViTBackbone"
    # A nested spec that names another component replaces the old one whole.
    merged = config.merge(
        {"augmentation": {"name": "r", "config": {"inner": {"name": "a", "config": {"x": 1}}}}},
        {"augmentation": {"config": {"inner": {"name": "b", "config": {"y": 2}}}}},
    )
    assert merged["augmentation"]["config"]["inner"] == {"name": "b", "config": {"y": 2}}


def test_flat_keys_of_an_old_layout_are_unknown_keys():
    with pytest.raises(
        config.ConfigError, match=r"`optimizer` has unknown key\(s\) \['learning_rate'\]"
    ):
        config.resolve("simclr_r50", overrides=["optimizer.learning_rate=0.5"])
    with pytest.raises(config.ConfigError, match=r"Unknown configuration section 'model'"):
        config.from_dict({"model": {"depth": 18}})


def test_file_overrides_yaml_and_json_then_command_line_wins(tmp_path):
    yaml_file = tmp_path / "over.yaml"
    yaml_file.write_text("loss:\n  config: {temperature: 0.7}\ntrain:\n  epochs: 3\n")
    json_file = tmp_path / "over.json"
    json_file.write_text(json.dumps({"train": {"epochs": 5}}))
    cfg = config.resolve(
        "simclr_r50", files=[yaml_file, json_file], overrides=["loss.config.temperature=0.9"]
    )
    assert cfg.train.epochs == 5
    assert cfg.loss["config"]["temperature"] == 0.9


@pytest.mark.parametrize(
    "override, expected",
    [
        ("optimizer.config.momentm=0.5", "Did you mean 'optimizer.config.momentum'"),
        ("optimizer.config.learning_rate=1", "set by the run, not by the spec (from the built"),
        ("schedule.config.global_batch_size=8", "from `data.global_batch_size`"),
        ("loss.config.temprature=0.5", "Did you mean 'loss.config.temperature'"),
        ("optimizer.name=lasr", "Did you mean 'lars'"),
        ("encoder.config.widht_multiplier=2", "Did you mean 'encoder.config.width_multiplier'"),
        ("augmentation.config.blurr=false", "Did you mean 'augmentation.config.blur'"),
        ("linear_eval.config.epoch=3", "Did you mean 'linear_eval.config.epochs'"),
        ("optimizer.momentum2=0.9", "a component spec has exactly `name` and `config`"),
        ("optimzer.config.momentum=0.5", "Did you mean 'optimizer'"),
        ("data.global_batch_size=abc", "`data.global_batch_size`: received 'abc'"),
        ("data.global_batch_size=0", "expected a value > 0"),
        ("train.precision=fp16", "expected one of ['float32', 'mixed_bfloat16', 'mixed_float16']"),
        ("momentum=0.5", "expected `section.key` with a section"),
        ("optimizer.config.momentum", "expected `section.key=value`"),
    ],
)
def test_bad_overrides_name_the_key_and_suggest(override, expected):
    with pytest.raises(config.ConfigError) as info:
        config.resolve("simclr_r50", overrides=[override])
    assert expected in str(info.value)


def test_unknown_preset_suggests_closest():
    with pytest.raises(ValueError, match="Did you mean 'simclr_r50'"):
        config.resolve("simclr_r5")


def test_bad_file_errors(tmp_path):
    with pytest.raises(config.ConfigError, match="not found"):
        config.resolve("demo", files=[tmp_path / "missing.yaml"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n- not a mapping\n")
    with pytest.raises(config.ConfigError, match="must hold a mapping"):
        config.resolve("demo", files=[bad])
    typo = tmp_path / "typo.yaml"
    typo.write_text("train:\n  epoch: 3\n")
    with pytest.raises(config.ConfigError, match="Did you mean 'train.epochs'"):
        config.resolve("demo", files=[typo])


def test_presets_are_packaged_yaml_data():
    import importlib.resources

    files = [p.name for p in importlib.resources.files("kclr.presets").iterdir()]
    assert "simclr_r50.yaml" in files and "demo.yaml" in files
