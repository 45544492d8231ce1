"""The step contract: a step kind returns `(gradients, outputs)` for a batch, and `call`,
the plain step and the gradient-cached step run the one forward."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

import kclr
from kclr.trainer.gradient_cache import gradient_cache_step
from kclr.trainer.step import forward, plain_step, supervised_labels


def _trainer(chunk=None):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    encoder = keras.Model(inputs, x)
    trainer = kclr.ContrastiveTrainer(
        encoder,
        keras.layers.Dense(5, name="projection_head"),  # no BatchNorm: chunks change nothing
        num_classes=3,
        gradient_cache_chunk_size=chunk,
    )
    trainer.compile(optimizer=keras.optimizers.SGD(0.1), loss=kclr.losses.SupCon(0.5))
    return trainer


def _batch():
    rng = np.random.default_rng(0)
    views = tf.constant(rng.uniform(size=(8, 2, 8, 8, 3)).astype("float32"))
    labels = tf.constant(rng.integers(0, 3, 8).astype("int32"))
    return views, labels


def _context(trainer, chunk=None):
    """The trainer's own step context, with the chunk size of the step kind under test."""
    return dataclasses.replace(trainer._context(), chunk_size=chunk)


def test_plain_step_and_one_chunk_cached_step_give_the_same_gradients_and_outputs():
    views, labels = _batch()
    trainer = _trainer()
    trainer(views, training=False)
    plain_grads, plain = plain_step(_context(trainer), views, labels)
    cached_grads, cached = gradient_cache_step(_context(trainer, chunk=8), views, labels)
    assert len(plain_grads) == len(cached_grads) == len(trainer.trainable_variables) > 0
    for variable, a, b in zip(trainer.trainable_variables, plain_grads, cached_grads, strict=True):
        assert (a is None) == (b is None), variable.path
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=variable.path)
    np.testing.assert_allclose(cached.projections, plain.projections, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cached.logits, plain.logits, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cached.contrastive, plain.contrastive, rtol=1e-6)
    np.testing.assert_allclose(cached.supervised, plain.supervised, rtol=1e-6)
    assert plain.num_views == cached.num_views == 2
    assert plain.projections.shape == (8, 2, 5) and plain.logits.shape == (16, 3)
    assert plain.contrast is None and len(cached.contrast) == 2
    # A step applies nothing: the weights are those of before.
    assert float(trainer.optimizer.iterations.numpy()) == 0


def test_call_plain_step_and_cached_step_use_the_one_forward():
    views, labels = _batch()
    trainer = _trainer()
    from_call = trainer(views, training=True).numpy()
    images = tf.reshape(tf.transpose(views, [1, 0, 2, 3, 4]), [16, 8, 8, 3])
    direct = forward(trainer.parts, images, 2, training=True)
    np.testing.assert_allclose(direct.projections, from_call, rtol=1e-6, atol=1e-7)
    _, plain = plain_step(_context(trainer), views, labels)
    _, cached = gradient_cache_step(_context(trainer, chunk=4), views, labels)
    np.testing.assert_allclose(plain.projections, from_call, rtol=1e-6, atol=1e-7)
    # No BatchNorm: chunks of 4 project exactly as the whole batch.
    np.testing.assert_allclose(cached.projections, from_call, rtol=1e-6, atol=1e-7)
    # Images [B, H, W, C] without an augmenter: the projections [B, D] of the same forward.
    single = trainer(views[:, 0], training=True).numpy()
    np.testing.assert_allclose(single, from_call[:, 0], rtol=1e-6, atol=1e-7)


def test_supervised_labels_follow_the_view_major_rows():
    labels = tf.constant([4, 7, 1])
    np.testing.assert_array_equal(supervised_labels(labels, 2), [4, 7, 1, 4, 7, 1])
