"""Gradient caching: a step with K chunks equals one MirroredStrategy step on K replicas
with per-replica BatchNorm and global negatives; random state is replayed between passes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import kclr

REPLICAS = 4


@pytest.fixture(scope="module")
def strategy4():
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < REPLICAS:
        pytest.skip("needs 4 logical CPU devices (tests/conftest.py splits the CPU)")
    return tf.distribute.MirroredStrategy([d.name for d in devices[:REPLICAS]])


@pytest.fixture
def floatx(request):
    keras.config.set_floatx(request.param)
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")


@keras.saving.register_keras_serializable(package="kclr_tests")
class LocalBNHead(keras.layers.Layer):
    """Dense -> per-replica BN -> ReLU -> Dense, optionally with dropout; returns hiddens."""

    def __init__(self, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.dropout = dropout
        self.dense_0 = keras.layers.Dense(6, use_bias=False, name="nl_0")
        self.bn_0 = keras.layers.BatchNormalization(momentum=0.8, name="nl_0_bn")
        self.drop = keras.layers.Dropout(dropout, seed=3) if dropout else None
        self.dense_1 = keras.layers.Dense(5, name="nl_1")

    def build(self, input_shape):
        self.dense_0.build(input_shape)
        self.bn_0.build((None, 6))
        self.dense_1.build((None, 6))

    def call(self, h, training=None):
        a = keras.ops.relu(self.bn_0(self.dense_0(h), training=training))
        if self.drop is not None:
            a = self.drop(a, training=training)
        return [h, a, self.dense_1(a)]

    def get_config(self):
        return {**super().get_config(), "dropout": self.dropout}


def local_bn_encoder(size=8):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn")(x)  # not synchronised
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name="encoder")


def make_trainer(chunk=None, num_classes=None, dropout=0.0, augmenter=None, seed=0):
    keras.utils.set_random_seed(seed)
    return kclr.ContrastiveTrainer(
        local_bn_encoder(),
        LocalBNHead(dropout, name="projection_head"),
        num_classes=num_classes,
        device_augmenter=augmenter,
        gradient_cache_chunk_size=chunk,
    )


def data(batch=16, views=2, classes=3, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(batch, views, 8, 8, 3)).astype(dtype)
    labels = rng.integers(0, classes, batch).astype("int32")
    return images, labels


def dataset(images, labels):
    elements = {"views": images, "labels": labels}
    return tf.data.Dataset.from_tensor_slices(elements).batch(len(images), drop_remainder=True)


def one_step(strategy, images, labels, initial, compile_kwargs, chunk=None, num_classes=None):
    with strategy.scope():
        trainer = make_trainer(chunk, num_classes)
        trainer(images[:1], training=False)
        if initial is not None:
            trainer.set_weights(initial)
        start = [np.asarray(w) for w in trainer.get_weights()]
        trainer.compile(**compile_kwargs())
    logs = trainer.fit(dataset(images, labels), epochs=1, verbose=0).history
    return trainer, start, {k: v[-1] for k, v in logs.items()}


def replica_mean(variable, strategy):
    """Mean over the replicas' copies (per-replica BN keeps one moving average per replica)."""
    copies = strategy.experimental_local_results(variable.value)
    return np.mean([np.asarray(c) for c in copies], axis=0)


def sgd():
    return {"optimizer": keras.optimizers.SGD(0.5), "loss": kclr.losses.NTXent(0.5)}


def lars_supcon():
    return {
        "optimizer": kclr.optimizers.LARS(0.5, weight_decay=1e-3),
        "loss": kclr.losses.SupCon(temperature=0.5),
    }


def assert_step_equal(cached, mirrored, strategy, start, rtol, atol):
    cached_trainer, cached_logs = cached
    mirrored_trainer, mirrored_logs = mirrored
    for key, value in mirrored_logs.items():
        np.testing.assert_allclose(cached_logs[key], value, rtol=rtol, atol=atol, err_msg=key)
    moved = 0
    for w0, a, b in zip(
        start, cached_trainer.weights, mirrored_trainer.weights, strict=True
    ):  # fmt: skip
        assert a.path == b.path
        expected = replica_mean(b, strategy) if not b.trainable else np.asarray(b.numpy())
        got = a.numpy()
        scale = max(np.abs(expected).max(), 1e-3)
        assert np.abs(got - expected).max() / scale < rtol, (a.path, got, expected)
        moved += np.abs(got - w0).max() > 1e-6
    assert moved >= len(start) - 1  # the step moved the weights: the comparison is not vacuous


@pytest.mark.parametrize(
    "floatx, rtol, atol", [("float64", 1e-10, 1e-12), ("float32", 2e-5, 1e-6)], indirect=["floatx"]
)
def test_cached_step_equals_four_replicas_ntxent(floatx, rtol, atol, strategy4):
    images, labels = data(dtype=floatx)
    default = tf.distribute.get_strategy()
    mirrored, start, mirrored_logs = one_step(strategy4, images, labels, None, sgd)
    assert strategy4.num_replicas_in_sync == REPLICAS
    cached, _, cached_logs = one_step(default, images, labels, start, sgd, chunk=16 // REPLICAS)
    assert_step_equal(
        (cached, cached_logs), (mirrored, mirrored_logs), strategy4, start, rtol, atol
    )
    # The gradients themselves: plain SGD moved each weight by -0.5 * gradient.
    paths = [w.path for w in cached.weights]
    for a, b in zip(cached.trainable_weights, mirrored.trainable_weights, strict=True):
        w0 = start[paths.index(a.path)]
        g_cached, g_mirrored = (w0 - a.numpy()) / 0.5, (w0 - b.numpy()) / 0.5
        scale = max(np.abs(g_mirrored).max(), 1e-6)
        assert np.abs(g_cached - g_mirrored).max() / scale < 10 * rtol, a.path
    # BN moving statistics differ per replica (local BN): the comparison uses their mean.
    copies = strategy4.experimental_local_results(
        mirrored.encoder.get_layer("bn").moving_mean.value
    )
    assert np.abs(np.asarray(copies[0]) - np.asarray(copies[1])).max() > 1e-4


@pytest.mark.parametrize("floatx", ["float64"], indirect=True)
def test_one_chunk_is_one_device_not_four_replicas(floatx, strategy4):
    """Control: with a single chunk, BN normalises the whole batch and the step differs."""
    images, labels = data(dtype=floatx)
    mirrored, start, _ = one_step(strategy4, images, labels, None, sgd)
    whole, _, _ = one_step(tf.distribute.get_strategy(), images, labels, start, sgd, chunk=16)
    plain, _, _ = one_step(tf.distribute.get_strategy(), images, labels, start, sgd)
    kernel = mirrored.encoder.get_layer("conv").kernel.numpy()
    assert np.abs(whole.encoder.get_layer("conv").kernel.numpy() - kernel).max() > 1e-4
    for a, b in zip(whole.weights, plain.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12, err_msg=a.path)


@pytest.mark.parametrize("floatx", ["float64"], indirect=True)
def test_cached_step_equals_four_replicas_supcon_with_supervised_head(floatx, strategy4):
    images, labels = data(dtype=floatx)
    default = tf.distribute.get_strategy()
    mirrored, start, mirrored_logs = one_step(
        strategy4, images, labels, None, lars_supcon, num_classes=3
    )
    cached, _, cached_logs = one_step(
        default, images, labels, start, lars_supcon, chunk=4, num_classes=3
    )
    assert {"sup_loss", "sup_acc"} <= set(cached_logs)
    assert_step_equal(
        (cached, cached_logs), (mirrored, mirrored_logs), strategy4, start, 1e-10, 1e-12
    )
