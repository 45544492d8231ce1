"""LARS against a NumPy reference of the official update and the golden 2-step trace."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

import kclr
from kclr import registry


def _variable(path, value):
    *scopes, name = path.split("/")
    if not scopes:
        return keras.Variable(np.asarray(value, np.float32), name=name)
    with keras.name_scope(scopes[0]):
        return _variable("/".join(scopes[1:] + [name]), value)


def numpy_lars(w, grads, lr, momentum, wd, eeta, use_wd, adapt, classic=True, nesterov=False):
    """The official `LARSOptimizer._resource_apply_dense` in NumPy (float64)."""
    w = np.asarray(w, np.float64)
    v = np.zeros_like(w)
    out = []
    for g in grads:
        g = np.asarray(g, np.float64)
        if use_wd:
            g = g + wd * w
        if classic:
            trust = 1.0
            if adapt:
                wn, gn = np.linalg.norm(w), np.linalg.norm(g)
                trust = eeta * wn / gn if wn > 0 and gn > 0 else 1.0
            v = momentum * v + lr * trust * g
            update = momentum * v + lr * trust * g if nesterov else v
            w = w - update
        else:
            v = momentum * v + g
            update = momentum * v + g if nesterov else v
            trust = 1.0
            if adapt:
                wn, un = np.linalg.norm(w), np.linalg.norm(update)
                trust = eeta * wn / un if wn > 0 and un > 0 else 1.0
            w = w - lr * trust * update
        out.append(w)
    return out


def test_golden_two_step_trace(golden):
    lars = golden["lars"]
    paths = list(lars["results"])
    assert paths == ["conv2d/kernel", "batch_normalization/gamma", "dense/bias"]
    variables = [_variable(p, lars["w0"]) for p in paths]
    opt = kclr.optimizers.LARS(
        lars["lr"], momentum=lars["momentum"], weight_decay=lars["weight_decay"], eeta=lars["eeta"]
    )
    grad = np.asarray(lars["g"], np.float32)
    for step in (1, 2):
        opt.apply([grad] * 3, variables)
        for path, var in zip(paths, variables, strict=True):
            expected = np.asarray(lars["results"][path][f"step{step}"])
            np.testing.assert_allclose(var.numpy(), expected, rtol=1e-6, atol=1e-7, err_msg=path)
    # kernel: wd + trust ratio (tiny step); gamma and bias: plain momentum (big step)
    kernel_step = np.abs(variables[0].numpy() - np.asarray(lars["w0"])).max()
    gamma_step = np.abs(variables[1].numpy() - np.asarray(lars["w0"])).max()
    assert kernel_step < 1e-3 < gamma_step


@pytest.mark.parametrize(
    "classic, nesterov", [(True, False), (True, True), (False, False), (False, True)]
)
def test_matches_numpy_reference_for_several_steps(classic, nesterov):
    rng = np.random.default_rng(0)
    w0 = {
        "block/conv/kernel": rng.normal(size=(3, 3, 2, 4)),
        "block/bn/gamma": rng.normal(size=(4,)),
        "block/bn/beta": rng.normal(size=(4,)),
        "head/dense/bias": rng.normal(size=(4,)),
        "head_supervised/kernel": rng.normal(size=(4, 3)),
        "zero/kernel": np.zeros((2, 2)),
    }
    grads = {p: [rng.normal(size=np.shape(w)) for _ in range(4)] for p, w in w0.items()}
    variables = [_variable(p, w) for p, w in w0.items()]
    opt = kclr.optimizers.LARS(
        0.5, momentum=0.9, weight_decay=1e-3, eeta=0.01, classic_momentum=classic, nesterov=nesterov
    )
    for step in range(4):
        opt.apply([np.float32(grads[p][step]) for p in w0], variables)
    for path, var in zip(w0, variables, strict=True):
        excluded = bool(re.search("bn|bias|head_supervised", path))
        expected = numpy_lars(
            w0[path],
            grads[path],
            0.5,
            0.9,
            1e-3,
            0.01,
            not excluded,
            not excluded,
            classic,
            nesterov,
        )[-1]
        np.testing.assert_allclose(var.numpy(), expected, rtol=2e-5, atol=1e-6, err_msg=path)


def test_exclusions_match_variable_path_and_are_configurable():
    opt = kclr.optimizers.LARS(0.1, weight_decay=1e-4)
    assert opt.use_weight_decay("resnet/conv1/kernel")
    assert not opt.use_weight_decay("resnet/conv1_bn/gamma")
    assert not opt.use_weight_decay("batch_normalization/moving_mean")
    assert not opt.use_weight_decay("head_supervised/kernel")
    assert not opt.use_weight_decay("projection/dense/bias")
    assert opt.use_layer_adaptation("resnet/conv1/kernel")
    assert not opt.use_layer_adaptation("resnet/conv1_bn/beta")
    custom = kclr.optimizers.LARS(
        0.1,
        weight_decay=1e-4,
        exclude_from_weight_decay=["bias"],
        exclude_from_layer_adaptation=["gamma"],
    )
    assert custom.use_weight_decay("bn/gamma") and not custom.use_weight_decay("dense/bias")
    assert not custom.use_layer_adaptation("bn/gamma") and custom.use_layer_adaptation("dense/bias")
    assert not kclr.optimizers.LARS(0.1, weight_decay=0.0).use_weight_decay("conv/kernel")


def test_config_round_trip_and_registry():
    schedule = kclr.optimizers.WarmupCosineDecay(0.3, 512, 50000, epochs=10)
    opt = registry.optimizers.get("lars", learning_rate=schedule, weight_decay=1e-6, nesterov=True)
    assert isinstance(opt, kclr.optimizers.LARS)
    config = keras.saving.serialize_keras_object(opt)
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, kclr.optimizers.LARS)
    assert restored.lars_weight_decay == 1e-6 and restored.nesterov
    assert restored.wd_exclusions == opt.wd_exclusions
    assert isinstance(restored._learning_rate, kclr.optimizers.WarmupCosineDecay)
    assert restored._learning_rate.get_config() == schedule.get_config()


def test_works_inside_loss_scale_optimizer():
    var = _variable("conv/kernel", np.ones((2, 2)))
    opt = keras.optimizers.LossScaleOptimizer(kclr.optimizers.LARS(0.1, weight_decay=1e-4))
    grad = np.full((2, 2), 0.5, np.float32)
    opt.build([var])
    scaled = grad * float(opt.dynamic_scale.numpy())
    opt.apply([scaled], [var])
    expected = numpy_lars(np.ones((2, 2)), [grad], 0.1, 0.9, 1e-4, 0.001, True, True)[-1]
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-6)


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="momentum"):
        kclr.optimizers.LARS(0.1, momentum=1.5)
    with pytest.raises(ValueError, match="weight_decay"):
        kclr.optimizers.LARS(0.1, weight_decay=-1)
    with pytest.raises(ValueError, match="regular expressions"):
        kclr.optimizers.LARS(0.1, exclude_from_weight_decay=["(unclosed"])
