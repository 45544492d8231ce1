"""MoCo v3 from a run config: `--set method.name=moco_v3` on a SimCLR preset, the run log,
and a `kclr fit` killed with SIGKILL that resumes to the uninterrupted weights."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

import kclr.augment as A
from kclr import presets, registry
from kclr.run import config
from kclr.run import fit as runs
from kclr.testing.processes import kclr_fit


def test_switching_method_names_each_unused_spec():
    cfg = config.resolve("tiny", overrides=["method.name=moco_v3", "method.config.temperature=0.5"])
    run = runs.plan(cfg, 64)
    method = runs.build(cfg, "method", **runs.run_values(cfg, run))
    assert method.temperature == 0.5 and method.total_steps == run.total_steps == 2
    assert method.unused_spec_notes(config.to_dict(cfg)) == [
        "Method 'moco_v3' does not use `loss` ('ntxent'): MoCo v3 computes its own loss "
        "ctr(q1, k2) + ctr(q2, k1) with `method.config.temperature`."
    ]
    with pytest.raises(config.ConfigError, match="method.config.temprature.*temperature"):
        config.resolve("tiny", overrides=["method.name=moco_v3", "method.config.temprature=1"])
    with pytest.raises(config.ConfigError, match="total_steps"):  # the run supplies it
        config.resolve("tiny", overrides=["method.name=moco_v3", "method.config.total_steps=3"])


def test_presets_carry_the_authors_values():
    r50 = config.resolve("moco_v3_r50")
    assert r50.method["config"]["temperature"] == 1.0 and r50.optimizer["name"] == "moco_lars"
    assert r50.schedule["config"]["base_learning_rate"] == 0.6
    assert r50.optimizer["config"]["weight_decay"] == 1e-6 and r50.train.epochs == 100
    assert r50.augmentation["config"]["area_range"] == [0.2, 1.0]
    vit = config.resolve("moco_v3_vit_b")
    assert vit.method["config"]["temperature"] == 0.2 and vit.method["config"]["stop_grad_conv1"]
    assert vit.schedule["config"]["base_learning_rate"] == 1.5e-4 and vit.train.epochs == 300
    assert vit.optimizer["config"]["weight_decay"] == 0.1
    assert vit.schedule["config"]["warmup_epochs"] == 40
    assert "moco_v3_demo" in presets.names()
    for name in ("moco_v3_r50", "moco_v3_vit_b"):
        assert "CONFIG.md" in presets.describe(name)
    for cfg in (r50, vit):  # their loader: BYOL's asymmetric pair
        assert cfg.augmentation["name"] == "byol"
        views = registry.recipes.get("byol", image_size=32, **cfg.augmentation["config"])
        first, second = views.augmenters
        assert [_probability(first, A.RandomGaussianBlur), _probability(second, A.RandomGaussianBlur),
                _probability(first, A.RandomSolarize), _probability(second, A.RandomSolarize)
                ] == [1.0, 0.1, 0.0, 0.2]  # fmt: skip
        jitter = [s for s in first.steps if isinstance(s, A.ColorDistortion)][0]
        assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == (
            0.4, 0.4, 0.2, 0.1)  # fmt: skip


def _probability(pipeline, kind):
    steps = [s for s in pipeline.steps if isinstance(s, kind)]
    return steps[0].probability if steps else 0.0


ARGS = [
    "--preset", "tiny", "-q", "--set", "method.name=moco_v3",
    "--set", "train.steps=12", "--set", "train.checkpoint_every_steps=3",
    "--set", "data.num_examples=64", "--set", "eval.monitor=false",
]  # fmt: skip


def _state(run_dir):
    latest = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    with np.load(run_dir / "checkpoints" / latest["file"]) as data:
        return latest["step"], {key: data[key] for key in data.files}


@pytest.mark.slow
def test_sigkill_then_resume_ends_at_the_uninterrupted_weights(tmp_path):
    cut, full = tmp_path / "cut", tmp_path / "full"
    process = kclr_fit(*ARGS, "--out", str(cut))
    latest = cut / "checkpoints" / "latest.json"
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        if latest.exists() and json.loads(latest.read_text())["step"] >= 3:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed:\n" + (
        process.stdout.read()
    )
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = json.loads(latest.read_text())["step"]
    assert 3 <= killed_at < 12

    resumed = kclr_fit(*ARGS, "--out", str(cut), "--resume")
    output, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, output
    assert f"(step {killed_at})" in output
    assert "does not use `loss`" in output
    uninterrupted = kclr_fit(*ARGS, "--out", str(full))
    output_full, _ = uninterrupted.communicate(timeout=900)
    assert uninterrupted.returncode == 0, output_full

    step, got = _state(cut)
    step_full, want = _state(full)
    assert step == step_full == 12
    assert set(got) == set(want)
    momentum = [key for key in want if key.startswith("momentum/")]
    assert momentum and any(key.startswith("predictor/") for key in want)
    for key, value in want.items():  # momentum encoder, predictor, optimizer step included
        np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=1e-5, err_msg=key)
