"""`kclr presets list|show` (no TensorFlow needed)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kclr.cli import main


def test_list_shows_every_preset():
    result = CliRunner().invoke(main, ["presets", "list"])
    assert result.exit_code == 0, result.output
    for name in ("simclr_r50", "simclr_r50_4x", "supcon_r50", "demo"):
        assert name in result.output


def test_show_resolves_with_overrides_as_json():
    result = CliRunner().invoke(
        main,
        ["presets", "show", "simclr_r50", "--format", "json",
         "--set", "optimizer.config.momentum=0.95", "--set", "data.global_batch_size=256"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    values = json.loads(result.output)
    assert values["optimizer"]["config"]["momentum"] == 0.95
    assert values["data"]["global_batch_size"] == 256
    assert values["loss"] == {"name": "ntxent", "config": {"temperature": 0.1}}  # untouched
    assert values["knn"]["config"]["k"] == 200  # default filled in


def test_show_reads_like_the_recipe():
    result = CliRunner().invoke(main, ["presets", "show", "simclr_r50"])
    assert result.exit_code == 0, result.output
    text = result.output
    for line in (
        "optimizer:\n  name: lars\n  config: {momentum: 0.9, weight_decay: 1.0e-06}\n",
        "schedule:\n  name: warmup_cosine\n"
        "  config: {base_learning_rate: 0.3, scaling: linear, warmup_epochs: 10}\n",
        "loss:\n  name: ntxent\n  config: {temperature: 0.1}\n",
        "encoder:\n  name: resnet\n  config: {depth: 50, width_multiplier: 1.0}\n",
    ):
        assert line in text
    import yaml

    from kclr.run import config

    assert config.to_dict(config.from_dict(yaml.safe_load(text))) == config.to_dict(
        config.resolve("simclr_r50")
    )  # what it prints is a valid config file


def test_show_bad_key_is_a_clean_error():
    result = CliRunner().invoke(main, ["presets", "show", "demo", "--set", "train.epoch=3"])
    assert result.exit_code != 0
    assert "Unknown configuration key `train.epoch`" in result.output
    assert "Did you mean 'train.epochs'" in result.output
    assert "Traceback" not in result.output
