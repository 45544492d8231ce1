"""Preset resolution, overrides from the command line and files, and their errors."""

from __future__ import annotations

import json
import math

import pytest

from kclr import config, presets


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
    assert cfg.optimizer.name == "lars"
    assert cfg.optimizer.learning_rate == 0.3
    assert cfg.optimizer.learning_rate_scaling == "linear"
    assert cfg.optimizer.warmup_epochs == 10
    assert cfg.optimizer.weight_decay == 1e-6
    assert cfg.loss.name == "ntxent" and cfg.loss.temperature == 0.1
    assert cfg.model.head == "v1" and cfg.model.depth == 50
    assert cfg.data.recipe == "simclr"  # with blur
    # Peak LR 0.3 x 4096 / 256 = 4.8 (official schedule).
    peak = cfg.optimizer.learning_rate * cfg.data.global_batch_size / 256
    assert math.isclose(peak, 4.8)
    assert config.resolve("simclr_r50_2x").model.width_multiplier == 2.0
    assert config.resolve("simclr_r50_4x").model.width_multiplier == 4.0


def test_v2_supcon_and_cifar_presets():
    v2 = config.resolve("simclr_v2_r50")
    assert (v2.model.head, v2.optimizer.learning_rate_scaling, v2.optimizer.weight_decay) == (
        "v2", "sqrt", 1e-4,
    )  # fmt: skip
    assert math.isclose(v2.optimizer.learning_rate * math.sqrt(4096), 6.4)
    supcon = config.resolve("supcon_r50")
    assert supcon.loss.name == "supcon" and supcon.loss.temperature == 0.1
    assert supcon.optimizer.name == "lars"
    cifar = config.resolve("simclr_cifar10_r18")
    assert cifar.model.cifar_stem and cifar.model.depth == 18 and cifar.data.image_size == 32
    assert cifar.loss.temperature == 0.5 and cifar.data.recipe == "simclr_cifar"
    sc = config.resolve("supcon_cifar10_r50")
    # HobbitLong: SGD lr 0.5 at batch 1024.
    assert math.isclose(sc.optimizer.learning_rate * sc.data.global_batch_size / 256, 0.5)
    assert sc.optimizer.name == "sgd" and sc.model.head == "supcon"


def test_command_line_overrides_parse_types():
    cfg = config.resolve(
        "simclr_r50",
        overrides=[
            "optimizer.learning_rate=0.5",
            "data.global_batch_size=256",
            "model.cifar_stem=true",
            "model.hidden_dim=null",
            "data.recipe_overrides={color_jitter_strength: 0.5, blur: false}",
        ],
    )
    assert cfg.optimizer.learning_rate == 0.5
    assert cfg.data.global_batch_size == 256 and isinstance(cfg.data.global_batch_size, int)
    assert cfg.model.cifar_stem is True
    assert cfg.data.recipe_overrides == {"color_jitter_strength": 0.5, "blur": False}
    # Ints are accepted where floats are expected.
    assert config.resolve("demo", overrides=["loss.temperature=1"]).loss.temperature == 1.0


def test_file_overrides_yaml_and_json_then_command_line_wins(tmp_path):
    yaml_file = tmp_path / "over.yaml"
    yaml_file.write_text("optimizer:\n  learning_rate: 0.7\ntrain:\n  epochs: 3\n")
    json_file = tmp_path / "over.json"
    json_file.write_text(json.dumps({"train": {"epochs": 5}}))
    cfg = config.resolve(
        "simclr_r50", files=[yaml_file, json_file], overrides=["optimizer.learning_rate=0.9"]
    )
    assert cfg.train.epochs == 5
    assert cfg.optimizer.learning_rate == 0.9


@pytest.mark.parametrize(
    "override, expected",
    [
        ("optimizer.learnin_rate=0.5", "Did you mean 'optimizer.learning_rate'"),
        ("optimzer.learning_rate=0.5", "Did you mean 'optimizer'"),
        ("data.global_batch_size=abc", "`data.global_batch_size`: received 'abc'"),
        ("data.global_batch_size=0", "expected a value > 0"),
        ("train.precision=fp16", "expected one of ['float32', 'mixed_bfloat16', 'mixed_float16']"),
        ("model.head=v3", "received 'v3', expected one of ['v1', 'v2'"),
        ("model.head=suppcon", "Did you mean 'supcon'"),
        ("learning_rate=0.5", "Did you mean 'optimizer.learning_rate'"),
        ("optimizer.learning_rate", "expected `section.key=value`"),
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
