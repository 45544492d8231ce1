"""The MoCo v3 loss, momentum schedule and EMA against the authors' own functions
(`golden_moco_v3_official.json`: `MoCo.contrastive_loss`, `MoCo.forward`'s symmetric sum,
`adjust_moco_momentum`, `MoCo._update_momentum_encoder` run with torch on CPU)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from kclr_mocov3 import contrastive_loss, moco_momentum, symmetric_loss
from kclr_mocov3.method import ema_update

TOL = 1e-5


def _per_replica(strategy, arrays):
    """Replica r receives `arrays[i][r]` for every i."""
    return [
        strategy.experimental_distribute_values_from_function(
            lambda context, a=a: tf.constant(np.asarray(a[context.replica_id_in_sync_group]))
        )
        for a in arrays
    ]


def test_loss_value_and_query_gradient_per_replica(two_replicas, moco_golden):
    golden = moco_golden["contrastive_loss"]
    temperature = moco_golden["temperature"]
    q, k = _per_replica(two_replicas, [golden["q"], golden["k"]])

    @tf.function
    def replica(q, k):
        with tf.GradientTape() as tape:
            tape.watch(q)
            loss = contrastive_loss(q, k, temperature)
        return loss, tape.gradient(loss, q)

    loss, grad = two_replicas.run(replica, args=(q, k))
    losses = [t.numpy() for t in two_replicas.experimental_local_results(loss)]
    grads = [t.numpy() for t in two_replicas.experimental_local_results(grad)]
    np.testing.assert_allclose(losses, golden["loss_per_replica"], atol=TOL, rtol=TOL)
    for got, want in zip(grads, golden["grad_q_per_replica"], strict=True):
        np.testing.assert_allclose(got, want, atol=TOL, rtol=TOL)


def test_one_replica_sees_only_its_own_keys_as_positives(moco_golden):
    """Without a strategy the keys are the local ones: replica 0's value changes."""
    golden = moco_golden["contrastive_loss"]
    q, k = np.asarray(golden["q"][0]), np.asarray(golden["k"][0])
    local = float(contrastive_loss(q, k, moco_golden["temperature"]))
    assert local != pytest.approx(golden["loss_per_replica"][0], abs=1e-3)
    # The same value in NumPy: CE of q·k/T over the local keys, times 2T.
    t = moco_golden["temperature"]
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    kn = k / np.linalg.norm(k, axis=1, keepdims=True)
    logits = qn @ kn.T / t
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    assert local == pytest.approx(-np.mean(np.diag(log_probs)) * 2 * t, abs=TOL)


def test_symmetric_loss_per_replica(two_replicas, moco_golden):
    golden = moco_golden["symmetric"]
    inputs = _per_replica(two_replicas, [golden[key] for key in ("q1", "q2", "k1", "k2")])
    temperature = moco_golden["temperature"]
    loss = two_replicas.run(
        tf.function(lambda *a: symmetric_loss(*a, temperature)), args=tuple(inputs)
    )
    got = [t.numpy() for t in two_replicas.experimental_local_results(loss)]
    np.testing.assert_allclose(got, golden["loss_per_replica"], atol=TOL, rtol=TOL)


def test_momentum_schedule(moco_golden):
    schedule = moco_golden["momentum_schedule"]
    for epoch, want in schedule["m_at_epoch"].items():
        progress = float(epoch) / schedule["epochs"]
        got = float(moco_momentum(progress, schedule["moco_m"], cosine=True))
        assert got == pytest.approx(want, abs=TOL), epoch
    assert float(moco_momentum(0.7, 0.99, cosine=False)) == pytest.approx(0.99)


def test_method_momentum_follows_the_step(moco_golden):
    """`MoCoV3.momentum_at(step)` is the schedule at `step / total_steps` (per iteration)."""
    from kclr import registry

    method = registry.methods.get("moco_v3", total_steps=400)
    schedule = moco_golden["momentum_schedule"]
    for epoch, want in schedule["m_at_epoch"].items():  # 4 steps per epoch of 100
        step = float(epoch) * 4
        assert float(method.momentum_at(step)) == pytest.approx(want, abs=TOL), epoch


def test_ema_update(moco_golden):
    golden = moco_golden["momentum_update"]
    base = keras.Variable(np.asarray(golden["base"], "float32"))
    copy = keras.Variable(np.asarray(golden["momentum_before"], "float32"))
    ema_update([(base, copy)], golden["m"])
    np.testing.assert_allclose(copy.numpy(), golden["momentum_after"], atol=TOL, rtol=TOL)
    np.testing.assert_allclose(base.numpy(), golden["base"])  # the base is untouched
