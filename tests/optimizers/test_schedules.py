"""WarmupCosineDecay against the official golden schedule values."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import kclr


def _parse(key):
    bs, base, scaling, epochs, n = key.split("_")
    return int(bs[2:]), float(base[4:]), scaling, int(epochs[2:]), int(n[1:])


def test_matches_golden_schedules(golden):
    schedules = golden["lr_schedule_warmup10"]
    assert len(schedules) == 4
    for key, expected in schedules.items():
        batch, base, scaling, epochs, n = _parse(key)
        schedule = kclr.optimizers.WarmupCosineDecay(base, batch, n, epochs, scaling=scaling)
        assert schedule.total_steps == expected["total_steps"], key
        assert schedule.warmup_steps == expected["warmup_steps"], key
        for step, value in expected["values"].items():
            np.testing.assert_allclose(
                float(schedule(int(step))), value, rtol=1e-6, atol=1e-6, err_msg=f"{key}@{step}"
            )


def test_linear_and_sqrt_scaling():
    assert kclr.optimizers.scale_learning_rate(0.3, 4096, "linear") == pytest.approx(4.8)
    assert kclr.optimizers.scale_learning_rate(0.075, 4096, "sqrt") == pytest.approx(4.8)
    assert kclr.optimizers.scale_learning_rate(0.075, 256, "sqrt") == pytest.approx(0.075 * 16)
    with pytest.raises(ValueError, match="'linear'"):
        kclr.optimizers.scale_learning_rate(0.3, 256, "cubic")


def test_total_steps_override_and_no_warmup():
    schedule = kclr.optimizers.WarmupCosineDecay(
        1.0, 256, 1000, 10, warmup_epochs=0, total_steps=100
    )
    assert schedule.total_steps == 100 and schedule.warmup_steps == 0
    np.testing.assert_allclose(float(schedule(0)), 1.0)
    np.testing.assert_allclose(float(schedule(50)), 0.5 * (1 + math.cos(math.pi * 0.5)), atol=1e-6)
    np.testing.assert_allclose(float(schedule(100)), 0.0, atol=1e-7)
    np.testing.assert_allclose(float(schedule(150)), 0.0, atol=1e-7)


def test_config_round_trip():
    schedule = kclr.optimizers.WarmupCosineDecay(0.075, 1024, 1281167, 800, scaling="sqrt")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert restored.get_config() == schedule.get_config()
    assert (restored.warmup_steps, restored.total_steps) == (12511, 1000912)
