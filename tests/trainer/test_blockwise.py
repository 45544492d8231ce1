"""The loss, its gradient and the contrast metrics a block of anchors at a time equal
the same computed in one piece, on one device and across replicas."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import kclr
from kclr.trainer import blockwise
from kclr.trainer.metrics import contrastive_accuracy, contrastive_entropy

B, D = 12, 5


def features_and_labels(views, seed=0):
    rng = np.random.default_rng(seed)
    features = tf.constant(rng.normal(size=(B, views, D)), tf.float64)
    labels = tf.constant(rng.integers(0, 3, B), tf.int32)
    return features, labels


def in_one_piece(loss_fn, features, labels):
    with tf.GradientTape() as tape:
        tape.watch(features)
        loss = loss_fn(labels, features)
    return loss, tape.gradient(loss, features)


LOSSES = {
    "ntxent": lambda: kclr.losses.NTXent(temperature=0.2),
    "supcon": lambda: kclr.losses.SupCon(temperature=0.3),
}


def test_block_rows_divide_the_batch_within_the_budget(monkeypatch):
    assert blockwise.block_rows(4096, 2 * 2 * 4096) == 128  # 2^21 / 16384
    assert blockwise.block_rows(1024, 2 * 2 * 1024) == 512
    assert blockwise.block_rows(12, 48) == 12
    monkeypatch.setattr(blockwise, "BLOCK_LOGITS", 48 * 5)
    assert blockwise.block_rows(12, 48) == 4  # the largest divisor of 12 up to 5
    assert blockwise.block_rows(7, 48) == 1  # 7 is prime: one anchor per block
    assert blockwise.block_rows(12, 10**9) == 1


@pytest.mark.parametrize("floatx", ["float64"], indirect=True)
@pytest.mark.parametrize("views", [2, 3])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_blocks_equal_one_piece(name, views, floatx, monkeypatch):
    monkeypatch.setattr(blockwise, "BLOCK_LOGITS", views * views * B * 3)  # 3 anchors a block
    assert blockwise.block_rows(B, views * views * B) == 3
    features, labels = features_and_labels(views)
    loss_fn = LOSSES[name]()
    optimizer = keras.optimizers.SGD(0.1)
    loss, grads = tf.function(blockwise.loss_and_gradient)(loss_fn, optimizer, features, labels)
    expected_loss, expected = in_one_piece(loss_fn, features, labels)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(grads, expected, rtol=1e-10, atol=1e-14)
    assert np.abs(expected.numpy()).max() > 1e-3  # not a vacuous comparison


@pytest.mark.parametrize("floatx", ["float64"], indirect=True)
def test_contrast_metrics_in_blocks(floatx, monkeypatch):
    monkeypatch.setattr(blockwise, "BLOCK_LOGITS", B * 4)  # 4 anchors a block
    rng = np.random.default_rng(1)
    first = rng.normal(size=(B, D))
    noise = rng.normal(size=(B, D)) * np.repeat([0.1, 10.0], B // 2)[:, None]
    features = tf.constant(np.stack([first, first + noise], axis=1))  # half find their pair
    loss_fn = kclr.losses.NTXent(temperature=0.5)
    accuracy, entropy = tf.function(blockwise.contrast_metrics)(loss_fn, features)
    z = tf.math.l2_normalize(features, axis=-1)
    logits = tf.matmul(z[:, 0], z[:, 1], transpose_b=True) / 0.5
    np.testing.assert_allclose(accuracy, contrastive_accuracy(logits, tf.range(B)), rtol=1e-6)
    np.testing.assert_allclose(entropy, contrastive_entropy(logits), rtol=1e-12)
    assert 0 < float(accuracy) < 1  # some anchors find their pair, not all


@pytest.mark.parametrize("floatx", ["float64"], indirect=True)
def test_blocks_across_replicas_equal_one_device(floatx, mirrored_strategy_2, monkeypatch):
    """Each replica's gradient is its rows of the single-device gradient (mean loss)."""
    monkeypatch.setattr(blockwise, "BLOCK_LOGITS", 2 * 2 * B * 2)  # 2 anchors a block
    features, labels = features_and_labels(2, seed=2)
    loss_fn = kclr.losses.SupCon(temperature=0.3)
    with mirrored_strategy_2.scope():
        optimizer = keras.optimizers.SGD(0.1)
    half = B // 2

    def step():
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        rows = replica * half + tf.range(half)
        local = tf.gather(features, rows)
        local.set_shape([half, 2, D])
        return blockwise.loss_and_gradient(loss_fn, optimizer, local, tf.gather(labels, rows))

    losses, grads = mirrored_strategy_2.run(tf.function(step))
    results = mirrored_strategy_2.experimental_local_results
    total = sum(float(v) for v in results(losses))
    expected_loss, expected = in_one_piece(loss_fn, features, labels)
    np.testing.assert_allclose(total, expected_loss, rtol=1e-12)
    got = np.concatenate([g.numpy() for g in results(grads)])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)
