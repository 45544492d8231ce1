"""One ContrastiveTrainer step under MirroredStrategy (2 logical CPUs) equals one
single-device step on the same global batch: synchronized BN, global negatives,
SUM-reduced gradients of per-replica losses divided by the replica count."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from kclr_tiny import (  # noqa: E402
    compile_trainer,
    dataset,
    tiny_data,
    tiny_trainer,
    weights_by_path,
)


def _step(strategy, images, labels, initial=None, learning_rate=0.5):
    with strategy.scope():
        trainer = tiny_trainer()
        trainer(images[:1], training=False)
        if initial is not None:
            trainer.set_weights(initial)
        start = [np.asarray(w) for w in trainer.get_weights()]
        compile_trainer(trainer, learning_rate=learning_rate)
    history = trainer.fit(dataset(images, labels, len(images)), epochs=1, verbose=0)
    return start, weights_by_path(trainer), history.history


# float32 uses a smaller learning rate: BN gamma/beta get plain SGD, and at 0.5 one
# step flips gamma's sign, which amplifies float32 reduction-order noise.
@pytest.mark.parametrize(
    "floatx, rtol, learning_rate",
    [("float64", 1e-10, 0.5), ("float32", 1e-5, 0.05)],
    indirect=["floatx"],
)
def test_mirrored_step_equals_single_device(floatx, rtol, learning_rate, mirrored_strategy):
    images, labels = tiny_data(batch=8)
    images = images.astype(floatx)
    initial, expected, single = _step(
        tf.distribute.get_strategy(), images, labels, learning_rate=learning_rate
    )
    mirrored = mirrored_strategy
    assert mirrored.num_replicas_in_sync == 2
    _, got, distributed = _step(mirrored, images, labels, initial, learning_rate)

    for key in ("loss", "sup_loss", "contrast_entropy", "contrast_acc", "learning_rate"):
        np.testing.assert_allclose(distributed[key][-1], single[key][-1], rtol=rtol, err_msg=key)
    # Same updated weights, BN moving statistics included.
    assert set(got) == set(expected)
    for path, value in expected.items():
        if floatx == "float64":
            scale = max(np.abs(value).max(), 1e-3)
            assert np.abs(got[path] - value).max() / scale < rtol, path
        else:
            # float32: the reduction order differs between one and two devices and the
            # synchronized-BN variance E[x^2] - E[x]^2 amplifies it: the BN parameters'
            # gradients differ by ~4e-5 relative. float64 above shows the maths is exact.
            np.testing.assert_allclose(got[path], value, rtol=1e-4, atol=1e-6, err_msg=path)
    assert any("moving_mean" in p for p in expected)
    # The step moved every trainable weight, so the comparison is not vacuous.
    changed = [np.abs(expected[p] - w).max() > 1e-7 for p, w in zip(expected, initial, strict=True)]
    assert sum(changed) >= len(changed) - 2


def test_mirrored_loss_is_mean_of_per_replica_losses(golden, mirrored_strategy):
    """The official 2-replica numbers: per-replica NT-Xent [4.374, 5.231], mean 4.8028."""
    import kclr

    x = np.asarray(golden["ntxent_input"], np.float32)  # rows 0:4 view 1, 4:8 view 2
    features = np.stack([x[:4], x[4:]], axis=1)  # [4, 2, 8]
    strategy = mirrored_strategy

    def per_replica(ctx):
        i = ctx.replica_id_in_sync_group
        local = tf.gather(tf.constant(features), tf.range(2) + 2 * i)
        # official value = 2 x kclr's
        return 2.0 * kclr.losses.nt_xent(local, temperature=0.5)

    values = strategy.experimental_local_results(
        strategy.run(lambda: per_replica(tf.distribute.get_replica_context()))
    )
    np.testing.assert_allclose(
        [float(v) for v in values], golden["ntxent_tf2_2replicas_tau0.5_per_replica"], rtol=1e-5
    )
    np.testing.assert_allclose(
        np.mean([float(v) for v in values]), golden["ntxent_tf2_2replicas_tau0.5_mean"], rtol=1e-6
    )


def test_gradient_through_cross_replica_concat_matches_single_device(mirrored_strategy):
    import kclr

    rng = np.random.default_rng(1)
    features = rng.normal(size=(6, 3, 5)).astype("float32")
    labels = np.array([0, 1, 0, 2, 1, 2])

    x = tf.constant(features)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = kclr.losses.supcon(x, labels, temperature=0.3)
    expected = tape.gradient(loss, x).numpy()

    strategy = mirrored_strategy

    def step():
        ctx = tf.distribute.get_replica_context()
        rows = tf.range(3) + 3 * ctx.replica_id_in_sync_group
        local = tf.gather(tf.constant(features), rows)
        with tf.GradientTape() as tape:
            tape.watch(local)
            value = kclr.losses.supcon(local, tf.gather(labels, rows), temperature=0.3)
            value = value / ctx.num_replicas_in_sync
        return tape.gradient(value, local), value

    grads, values = strategy.run(tf.function(step))
    got = np.concatenate([g.numpy() for g in strategy.experimental_local_results(grads)])
    total = sum(float(v) for v in strategy.experimental_local_results(values))
    np.testing.assert_allclose(total, float(loss), rtol=1e-6)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)
