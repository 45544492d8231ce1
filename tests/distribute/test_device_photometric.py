"""One MirroredStrategy step with the photometric stage on the device (uint8 views)
equals the single-device step on the same global batch; sync_bn still synchronises."""

from __future__ import annotations

import pathlib
import sys

import keras
import numpy as np
import tensorflow as tf

import kclr

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from kclr_tiny import TinyHead, compile_trainer, tiny_encoder, weights_by_path  # noqa: E402


def _step(strategy, views, labels, initial=None):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        trainer = kclr.ContrastiveTrainer(
            tiny_encoder(),
            TinyHead(name="projection_head"),
            num_classes=3,
            device_augmenter=kclr.data.photometric_stage("simclr", 8),
            augment_seed=11,
        )
        trainer(views[:1], training=False)
        if initial is not None:
            trainer.set_weights(initial)
        start = [np.asarray(w) for w in trainer.get_weights()]
        compile_trainer(trainer, learning_rate=0.05)
    data = tf.data.Dataset.from_tensor_slices({"views": views, "labels": labels}).batch(8)
    history = trainer.fit(data, epochs=1, verbose=0).history
    return start, weights_by_path(trainer), history


def test_mirrored_step_with_device_photometric_equals_single_device(mirrored_strategy):
    rng = np.random.default_rng(0)
    views = (rng.random((8, 2, 8, 8, 3)) * 255).astype(np.uint8)
    labels = rng.integers(0, 3, 8).astype("int32")
    initial, expected, single = _step(tf.distribute.get_strategy(), views, labels)
    _, got, distributed = _step(mirrored_strategy, views, labels, initial)
    for key in ("loss", "sup_loss", "contrast_entropy", "contrast_acc"):
        np.testing.assert_allclose(distributed[key][-1], single[key][-1], rtol=1e-5, err_msg=key)
    assert set(got) == set(expected)
    for path, value in expected.items():
        np.testing.assert_allclose(got[path], value, rtol=1e-4, atol=1e-6, err_msg=path)
    # The augmentation matters: without it the step lands elsewhere.
    plain = kclr.ContrastiveTrainer(tiny_encoder(), TinyHead(name="projection_head"), 3)
    plain(views[:1], training=False)
    plain.set_weights(initial)
    compile_trainer(plain, learning_rate=0.05)
    data = tf.data.Dataset.from_tensor_slices({"views": views, "labels": labels}).batch(8)
    loss = plain.fit(data, epochs=1, verbose=0).history["loss"][-1]
    assert abs(loss - single["loss"][-1]) > 1e-3


def test_sync_bn_synchronises_across_replicas(mirrored_strategy):
    x = tf.random.stateless_normal([8, 4], [0, 2]) + tf.range(8.0)[:, None]
    with mirrored_strategy.scope():
        layer = kclr.models.BatchNormalization(synchronized=True)
        layer.build(x.shape)

    def step():
        ctx = tf.distribute.get_replica_context()
        return layer(x[4 * ctx.replica_id_in_sync_group :][:4], training=True)

    out = mirrored_strategy.run(tf.function(step))
    got = np.concatenate([o.numpy() for o in mirrored_strategy.experimental_local_results(out)])
    mean, var = x.numpy().mean(0), x.numpy().var(0)
    np.testing.assert_allclose(got, (x.numpy() - mean) / np.sqrt(var + 1e-3), atol=1e-4)
