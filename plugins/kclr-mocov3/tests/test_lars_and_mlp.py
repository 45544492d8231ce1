"""`moco_lars` against a NumPy transcription of the authors' `moco/optimizer.py`; the MLPs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from kclr_mocov3 import MoCoLARS, MoCoMLP

from kclr import registry


def authors_lars(params, grads_per_step, lr, weight_decay, momentum, trust):
    """`LARS.step` of facebookresearch/moco-v3 `moco/optimizer.py`, in NumPy."""
    params = [p.astype("float64").copy() for p in params]
    mus = [np.zeros_like(p) for p in params]
    for grads in grads_per_step:
        for p, g, mu in zip(params, grads, mus, strict=True):
            dp = g.astype("float64")
            if p.ndim > 1:  # if not normalization gamma/beta or bias
                dp = dp + weight_decay * p
                param_norm, update_norm = np.linalg.norm(p), np.linalg.norm(dp)
                q = trust * param_norm / update_norm if param_norm > 0 and update_norm > 0 else 1.0
                dp = dp * q
            mu *= momentum
            mu += dp
            p -= lr * mu
    return params


def test_moco_lars_matches_the_authors_update():
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,), (2, 2, 3), (5, 2)]
    params = [rng.normal(size=s).astype("float32") for s in shapes]
    params[3][:] = 0.0  # a zero kernel: trust ratio 1
    grads = [[rng.normal(size=s).astype("float32") for s in shapes] for _ in range(3)]
    expected = authors_lars(params, grads, lr=0.5, weight_decay=0.1, momentum=0.9, trust=0.001)
    variables = [keras.Variable(p) for p in params]
    optimizer = registry.optimizers.get(
        "moco_lars", learning_rate=0.5, weight_decay=0.1, momentum=0.9
    )
    assert isinstance(optimizer, MoCoLARS) and optimizer.trust_coefficient == 0.001
    for step in grads:
        optimizer.apply(step, variables)
    for got, want in zip(variables, expected, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    # Biases (rank 1) get neither decay nor trust ratio: plain momentum SGD.
    mu1 = grads[0][1]
    mu2 = 0.9 * mu1 + grads[1][1]
    mu3 = 0.9 * mu2 + grads[2][1]
    bias = params[1] - 0.5 * (mu1 + mu2 + mu3)
    np.testing.assert_allclose(variables[1].numpy(), bias, rtol=1e-5, atol=1e-6)


def test_moco_lars_round_trips_its_config():
    optimizer = MoCoLARS(0.3, weight_decay=1e-6, momentum=0.8, trust_coefficient=0.002)
    clone = MoCoLARS.from_config(optimizer.get_config())
    assert (clone.moco_weight_decay, clone.momentum, clone.trust_coefficient) == (1e-6, 0.8, 0.002)


def _layers(mlp):
    return [(type(layer).__name__, layer) for layer in mlp.stack]


def test_resnet_projector_and_predictor_as_the_authors():
    projector = MoCoMLP(2, 4096, 256, last_bn=True)
    projector.build((None, 2048))
    kinds = [k for k, _ in _layers(projector)]
    assert kinds == ["Dense", "BatchNormalization", "ReLU", "Dense", "BatchNormalization"]
    dense = [layer for k, layer in _layers(projector) if k == "Dense"]
    assert [d.kernel.shape for d in dense] == [(2048, 4096), (4096, 256)]
    assert all(not d.use_bias for d in dense)
    hidden_bn, last_bn = [layer for k, layer in _layers(projector) if k == "BatchNormalization"]
    assert hidden_bn.center and hidden_bn.scale
    assert not last_bn.center and not last_bn.scale  # BatchNorm1d(affine=False)
    assert projector(np.zeros((4, 2048), "float32")).shape == (4, 256)

    predictor = MoCoMLP(2, 4096, None, last_bn=False)  # output: the input's width
    predictor.build((None, 256))
    kinds = [k for k, _ in _layers(predictor)]
    assert kinds == ["Dense", "BatchNormalization", "ReLU", "Dense"]
    assert predictor(np.zeros((4, 256), "float32")).shape == (4, 256)


def test_vit_projector_has_three_layers():
    projector = MoCoMLP(3, 64, 16, last_bn=True)
    projector.build((None, 32))
    kinds = [k for k, _ in _layers(projector)]
    assert kinds.count("Dense") == 3 and kinds.count("BatchNormalization") == 3
    with pytest.raises(ValueError, match="num_layers.*received 0"):
        MoCoMLP(0)
