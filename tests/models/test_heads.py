"""Projection and supervised heads: layout, parameter counts, init, outputs, config."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kclr.models import ProjectionHead, SupervisedHead


def count(weights) -> int:
    return sum(int(np.prod(v.shape)) for v in weights)


def test_v2_head_param_count_matches_official_r50():
    head = ProjectionHead("v2")
    hiddens = head(keras.Input((2048,)))
    assert [tuple(h.shape) for h in hiddens] == [(None, 2048)] * 3 + [(None, 128)]
    assert count(head.trainable_weights) == 8_659_072  # official R50 1x 3-layer head


def test_head_param_count_r18_and_layout():
    head = ProjectionHead("v2")
    head.build((None, 512))
    assert count(head.trainable_weights) == 592_000  # official R18 head (512-d)
    bns = [
        layer
        for stage in head.stages
        for layer in stage
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert [bn.center for bn in bns] == [True, True, False]
    assert all(bn.momentum == 0.9 and bn.epsilon == 1e-5 for bn in bns)
    denses = [
        layer for stage in head.stages for layer in stage if isinstance(layer, keras.layers.Dense)
    ]
    assert not any(d.use_bias for d in denses)


def relu(x):
    return np.maximum(x, 0)


def bn_inference(x, bn):
    gamma = bn.gamma.numpy() if bn.scale else 1.0
    beta = bn.beta.numpy() if bn.center else 0.0
    return (x - bn.moving_mean.numpy()) / np.sqrt(
        bn.moving_variance.numpy() + bn.epsilon
    ) * gamma + beta


def test_v1_head_forward_matches_numpy():
    rng = np.random.default_rng(0)
    head = ProjectionHead("v1", output_dim=8, sync_bn=False)
    head.build((None, 16))
    for stage in head.stages:
        for layer in stage:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape))
                layer.moving_variance.assign(rng.uniform(0.5, 2, size=layer.moving_variance.shape))
                layer.gamma.assign(rng.normal(size=layer.gamma.shape))
    x = rng.normal(size=(4, 16)).astype("float32")
    hiddens = [keras.ops.convert_to_numpy(h) for h in head(x, training=False)]
    (d0, b0, _), (d1, b1) = head.stages
    h1 = relu(bn_inference(x @ d0.kernel.numpy(), b0))
    h2 = bn_inference(h1 @ d1.kernel.numpy(), b1)
    assert len(hiddens) == 3
    np.testing.assert_allclose(hiddens[0], x)
    np.testing.assert_allclose(hiddens[1], h1, atol=1e-5)
    np.testing.assert_allclose(hiddens[2], h2, atol=1e-5)


def test_supcon_linear_none_heads():
    x = np.random.default_rng(1).normal(size=(4, 32)).astype("float32")
    supcon = ProjectionHead("supcon", output_dim=8)
    out = supcon(x)
    assert [h.shape[-1] for h in out] == [32, 32, 8]
    assert count(supcon.trainable_weights) == 32 * 32 + 32 + 32 * 8 + 8
    (dense0, _), (dense1,) = supcon.stages
    np.testing.assert_allclose(
        out[-1],
        relu(x @ dense0.kernel.numpy() + dense0.bias.numpy()) @ dense1.kernel.numpy()
        + dense1.bias.numpy(),
        atol=1e-5,
    )
    linear = ProjectionHead("linear", output_dim=8)
    assert [h.shape[-1] for h in linear(x)] == [32, 8]
    assert count(linear.trainable_weights) == 32 * 8 + 8  # kernel + BN gamma (no beta)
    none = ProjectionHead("none")
    out = none(x)
    assert len(out) == 1
    np.testing.assert_allclose(out[0], x)


def test_dense_init_std():
    head = ProjectionHead("v2")
    head.build((None, 1024))
    kernel = head.stages[0][0].kernel.numpy()
    np.testing.assert_allclose(kernel.std(), 0.01, rtol=0.02)


def test_head_config_round_trip_and_training_flag():
    head = ProjectionHead("v2", output_dim=16, hidden_dim=24, sync_bn=False, name="proj")
    config = head.get_config()
    assert {k: config[k] for k in ("version", "output_dim", "hidden_dim", "sync_bn", "name")} == {
        "version": "v2",
        "output_dim": 16,
        "hidden_dim": 24,
        "sync_bn": False,
        "name": "proj",
    }
    clone = ProjectionHead.from_config(config)
    x = np.random.default_rng(2).normal(size=(6, 10)).astype("float32")
    head(x)
    clone(x)
    clone.set_weights(head.get_weights())
    np.testing.assert_allclose(clone(x)[-1], head(x)[-1], atol=1e-6)
    # training=True uses batch statistics: different from inference with fresh stats.
    assert np.abs(np.asarray(head(x, training=True)[-1]) - np.asarray(head(x)[-1])).max() > 1e-3
    inputs = keras.Input((10,))
    model = keras.Model(inputs, head(inputs)[-1])
    assert model.output.shape == (None, 16)


def test_supervised_head():
    head = SupervisedHead(1000)
    assert head.name == "head_supervised"
    head.build((None, 2048))
    assert count(head.trainable_weights) == 2_049_000
    np.testing.assert_allclose(head.kernel.numpy().std(), 0.01, rtol=0.02)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        SupervisedHead(0)


def test_unknown_version():
    with pytest.raises(ValueError, match="Unknown projection head version 'v3'"):
        ProjectionHead("v3")
