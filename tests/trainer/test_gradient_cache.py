"""Gradient caching: a step with K chunks equals one MirroredStrategy step on K replicas
with per-replica BatchNorm and global negatives; random state is replayed between passes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import kclr

REPLICAS = 4


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


def make_trainer(chunk=None, num_classes=None, dropout=0.0, augmenter=None, seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    return kclr.ContrastiveTrainer(
        local_bn_encoder(),
        LocalBNHead(dropout, name="projection_head"),
        num_classes=num_classes,
        device_augmenter=augmenter,
        gradient_cache_chunk_size=chunk,
        **kwargs,
    )


def data(batch=16, views=2, classes=3, seed=0, dtype="float32"):
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(batch, views, 8, 8, 3)).astype(dtype)
    labels = rng.integers(0, classes, batch).astype("int32")
    return images, labels


def dataset(images, labels):
    elements = {"views": images, "labels": labels}
    return tf.data.Dataset.from_tensor_slices(elements).batch(len(images), drop_remainder=True)


def one_step(strategy, images, labels, initial, compile_kwargs, chunk=None, **kwargs):
    with strategy.scope():
        trainer = make_trainer(chunk, **kwargs)
        trainer(images[:1], training=False)
        if initial is not None:
            trainer.set_weights(initial)
        start = [np.asarray(w) for w in trainer.get_weights()]
        trainer.compile(**compile_kwargs())
    logs = trainer.fit(dataset(images, labels), epochs=1, verbose=0).history
    return trainer, start, {k: v[-1] for k, v in logs.items()}


def uint8_cast_shapes(graph):
    """Output shapes of the image casts from uint8 in a traced step and its loop bodies."""
    graphs = [graph] + [f.graph for f in graph._functions.values()]
    return {
        tuple(op.outputs[0].shape)
        for g in graphs
        for op in g.get_operations()
        if op.type == "Cast" and op.inputs[0].dtype == tf.uint8 and op.outputs[0].shape.rank == 4
    }


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


def assert_step_equal(cached, mirrored, strategy, start, rtol, atol, cached_strategy=None):
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
        if cached_strategy is not None and not a.trainable:
            got = replica_mean(a, cached_strategy)
        scale = max(np.abs(expected).max(), 1e-3)
        assert np.abs(got - expected).max() / scale < rtol, (a.path, got, expected)
        moved += np.abs(got - w0).max() > 1e-6
    assert moved >= len(start) - 1  # the step moved the weights: the comparison is not vacuous


@pytest.mark.parametrize(
    "floatx, rtol, atol",
    [
        ("float64", 1e-10, 1e-12),
        pytest.param("float32", 2e-5, 1e-6, marks=pytest.mark.slow),
    ],
    indirect=["floatx"],
)
def test_cached_step_equals_four_replicas_ntxent(floatx, rtol, atol, mirrored_strategy_4):
    images, labels = data(dtype=floatx)
    default = tf.distribute.get_strategy()
    mirrored, start, mirrored_logs = one_step(mirrored_strategy_4, images, labels, None, sgd)
    assert mirrored_strategy_4.num_replicas_in_sync == REPLICAS
    cached, _, cached_logs = one_step(default, images, labels, start, sgd, chunk=16 // REPLICAS)
    assert_step_equal(
        (cached, cached_logs), (mirrored, mirrored_logs), mirrored_strategy_4, start, rtol, atol
    )
    # The gradients themselves: plain SGD moved each weight by -0.5 * gradient.
    paths = [w.path for w in cached.weights]
    for a, b in zip(cached.trainable_weights, mirrored.trainable_weights, strict=True):
        w0 = start[paths.index(a.path)]
        g_cached, g_mirrored = (w0 - a.numpy()) / 0.5, (w0 - b.numpy()) / 0.5
        scale = max(np.abs(g_mirrored).max(), 1e-6)
        assert np.abs(g_cached - g_mirrored).max() / scale < 10 * rtol, a.path
    # BN moving statistics differ per replica (local BN): the comparison uses their mean.
    copies = mirrored_strategy_4.experimental_local_results(
        mirrored.encoder.get_layer("bn").moving_mean.value
    )
    assert np.abs(np.asarray(copies[0]) - np.asarray(copies[1])).max() > 1e-4


@pytest.mark.parametrize("floatx", ["float64"], indirect=True)
def test_uint8_views_are_chunked_without_a_float_copy_of_the_batch(floatx, mirrored_strategy_4):
    """uint8 views (no device augmenter) are converted chunk by chunk: same step."""
    images, labels = data()
    images = np.round(images * 255).astype("uint8")
    default = tf.distribute.get_strategy()
    mirrored, start, mirrored_logs = one_step(mirrored_strategy_4, images, labels, None, sgd)
    cached, _, cached_logs = one_step(default, images, labels, start, sgd, chunk=16 // REPLICAS)
    assert_step_equal(
        (cached, cached_logs), (mirrored, mirrored_logs), mirrored_strategy_4, start, 1e-10, 1e-12
    )
    # The cached step's graph holds no float copy of the whole batch: every cast
    # from uint8 works on one chunk [V*N, 8, 8, 3].
    step = tf.function(lambda v: cached.train_step({"views": v, "labels": labels}))
    graph = step.get_concrete_function(tf.TensorSpec(images.shape, tf.uint8)).graph
    assert uint8_cast_shapes(graph) == {(2 * 16 // REPLICAS, 8, 8, 3)}


@pytest.mark.parametrize(
    "raw",
    [False, pytest.param(True, marks=pytest.mark.slow)],  # ~20 s each: 4 replicas trace the stage
    ids=["views", "raw_images"],
)
def test_device_photometric_runs_per_chunk_as_on_replicas(raw, mirrored_strategy_4):
    """kclr's device stage augments each chunk in both passes, drawing every image's own
    parameters: the step equals 4 replicas (each augmenting its part of the batch)."""
    images, labels = data()
    images = np.round(images * 255).astype("uint8")
    if raw:  # [B, H, W, C]: the trainer makes the views
        images = images[:, 0]
    stage = {"augmenter": kclr.data.photometric_stage("simclr", 8), "augment_seed": 7}
    default = tf.distribute.get_strategy()
    mirrored, start, mirrored_logs = one_step(
        mirrored_strategy_4, images, labels, None, sgd, **stage
    )
    stage["augmenter"] = kclr.data.photometric_stage("simclr", 8)
    cached, _, cached_logs = one_step(default, images, labels, start, sgd, chunk=4, **stage)
    assert_step_equal(
        (cached, cached_logs), (mirrored, mirrored_logs), mirrored_strategy_4, start, 2e-5, 1e-6
    )
    # No augmented copy of the whole batch: the stage's output is one chunk [V*N, ...].
    step = tf.function(lambda v: cached.train_step({"views": v, "labels": labels}))
    graph = step.get_concrete_function(tf.TensorSpec(images.shape, tf.uint8)).graph
    assert uint8_cast_shapes(graph) == {(8, 8, 8, 3)}


@pytest.mark.slow
@pytest.mark.parametrize("floatx", ["float64"], indirect=True)
def test_one_chunk_is_one_device_not_four_replicas(floatx, mirrored_strategy_4):
    """Control: with a single chunk, BN normalises the whole batch and the step differs."""
    images, labels = data(dtype=floatx)
    mirrored, start, _ = one_step(mirrored_strategy_4, images, labels, None, sgd)
    whole, _, _ = one_step(tf.distribute.get_strategy(), images, labels, start, sgd, chunk=16)
    plain, _, _ = one_step(tf.distribute.get_strategy(), images, labels, start, sgd)
    kernel = mirrored.encoder.get_layer("conv").kernel.numpy()
    assert np.abs(whole.encoder.get_layer("conv").kernel.numpy() - kernel).max() > 1e-4
    for a, b in zip(whole.weights, plain.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12, err_msg=a.path)


@pytest.mark.parametrize("floatx", ["float64"], indirect=True)
def test_cached_step_equals_four_replicas_supcon_with_supervised_head(floatx, mirrored_strategy_4):
    images, labels = data(dtype=floatx)
    default = tf.distribute.get_strategy()
    mirrored, start, mirrored_logs = one_step(
        mirrored_strategy_4, images, labels, None, lars_supcon, num_classes=3
    )
    cached, _, cached_logs = one_step(
        default, images, labels, start, lars_supcon, chunk=4, num_classes=3
    )
    assert {"sup_loss", "sup_acc"} <= set(cached_logs)
    assert_step_equal(
        (cached, cached_logs), (mirrored, mirrored_logs), mirrored_strategy_4, start, 1e-10, 1e-12
    )


def _reference_chunked_step(trainer, images, chunk, learning_rate, temperature):
    """The chunked forward under one tape, by hand: what gradient caching must reproduce."""
    b, v = images.shape[:2]
    flat = np.concatenate([images[:, i] for i in range(v)])  # view-major
    augmented = trainer.device_augmenter(flat, training=True)  # once, on the whole batch
    chunks = b // chunk
    grouped = tf.reshape(augmented, [v, chunks, chunk, *flat.shape[1:]])
    variables = trainer.trainable_variables
    with tf.GradientTape() as tape:
        features = []
        for k in range(chunks):  # dropout draws advance chunk by chunk, as in pass 1
            x = tf.reshape(grouped[:, k], [v * chunk, *flat.shape[1:]])
            z = trainer.projection_head(trainer.encoder(x, training=True), training=True)[-1]
            features.append(tf.transpose(tf.reshape(z, [v, chunk, -1]), [1, 0, 2]))
        loss = kclr.losses.nt_xent(tf.concat(features, 0), temperature)
    gradients = tape.gradient(loss, variables)
    updated = {
        w.path: (w - learning_rate * g).numpy() for w, g in zip(variables, gradients, strict=True)
    }
    return float(loss), updated


@pytest.mark.parametrize("replay", [True, False])
@pytest.mark.parametrize("floatx", ["float64"], indirect=True)
def test_random_state_is_replayed_between_passes(floatx, replay, monkeypatch):
    """Device augmentation once per batch, dropout masks identical in both passes."""
    from kclr.trainer import gradient_cache

    if not replay:  # control: without the rewind, pass 2 draws new dropout masks
        monkeypatch.setattr(gradient_cache._LayerState, "rewind_random", lambda self, v: None)
    images, labels = data(dtype=floatx)

    def build():  # same weights and the same seeds, separate random state
        return make_trainer(chunk=4, dropout=0.5, augmenter=keras.layers.GaussianNoise(0.3, seed=5))

    reference = build()
    reference(images[:1])
    expected_loss, expected = _reference_chunked_step(reference, images, 4, 0.5, 0.5)

    trainer = build()
    trainer(images[:1])
    trainer.compile(optimizer=keras.optimizers.SGD(0.5), loss=kclr.losses.NTXent(0.5))
    logs = trainer.fit(dataset(images, labels), verbose=0).history
    np.testing.assert_allclose(logs["loss"][-1], expected_loss, rtol=1e-10)  # pass 1
    errors = [
        np.abs(w.numpy() - expected[w.path]).max() / max(np.abs(expected[w.path]).max(), 1e-3)
        for w in trainer.trainable_weights
    ]
    if replay:
        assert max(errors) < 1e-10
    else:
        assert max(errors) > 1e-4


@pytest.mark.parametrize(
    "policy", ["mixed_float16", pytest.param("mixed_bfloat16", marks=pytest.mark.slow)]
)
def test_mixed_precision_with_loss_scaling(policy):
    images, labels = data()
    results = {}
    for name in ("float32", policy):
        keras.config.set_dtype_policy(name)
        try:
            trainer = make_trainer(chunk=8, num_classes=3)
            optimizer = keras.optimizers.SGD(0.1)
            if name == "mixed_float16":  # a scale that does not overflow at the first step
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=256.0)
            trainer.compile(optimizer=optimizer, loss=kclr.losses.NTXent(0.5))
            logs = trainer.fit(dataset(images, labels), verbose=0).history
        finally:
            keras.config.set_dtype_policy("float32")
        results[name] = (trainer, {k: v[-1] for k, v in logs.items()})
    trainer, logs = results[policy]
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer) == (
        policy == "mixed_float16"
    )
    reference = results["float32"][1]
    for key in ("loss", "sup_loss"):
        np.testing.assert_allclose(logs[key], reference[key], rtol=3e-2, err_msg=key)
    assert int(trainer.optimizer.iterations.numpy()) == 1
    start = make_trainer(num_classes=3)
    start(images[:1])
    for layer in ("conv", "bn"):
        w0 = start.encoder.get_layer(layer).trainable_weights[0].numpy()
        got = trainer.encoder.get_layer(layer).trainable_weights[0].numpy() - w0
        expected = results["float32"][0].encoder.get_layer(layer).trainable_weights[0].numpy() - w0
        assert np.abs(expected).max() > 1e-3  # the step moved the weights
        # Half-precision noise is ~10%; a missing or doubled loss scale would be off 256x.
        assert np.linalg.norm(got - expected) < 0.2 * np.linalg.norm(expected), layer


def test_three_views_and_config_round_trip():
    images, labels = data(batch=8, views=3)
    plain, cached = make_trainer(), make_trainer(chunk=8)
    for trainer in (plain, cached):
        trainer.compile(optimizer=keras.optimizers.SGD(0.1), loss="supcon")
    plain_logs = plain.fit(dataset(images, labels), verbose=0).history
    cached_logs = cached.fit(dataset(images, labels), verbose=0).history
    # One chunk of the whole batch is exactly the plain step.
    np.testing.assert_allclose(cached_logs["loss"], plain_logs["loss"], rtol=1e-6)
    for a, b in zip(cached.weights, plain.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)
    restored = kclr.ContrastiveTrainer.from_config(cached.get_config())
    assert restored.gradient_cache_chunk_size == 8


def test_errors_name_the_chunk_size():
    with pytest.raises(ValueError, match="gradient_cache_chunk_size.*received 0"):
        make_trainer(chunk=0)
    images, labels = data(batch=12)
    trainer = make_trainer(chunk=5)
    trainer.compile(optimizer="sgd", loss="ntxent")
    with pytest.raises(ValueError, match="local batch of 12 images.*e.g. 4"):
        trainer.fit(dataset(images, labels), verbose=0)
    unbatched = tf.data.Dataset.from_tensor_slices({"views": images, "labels": labels}).batch(12)
    with pytest.raises(ValueError, match="drop_remainder=True"):
        trainer.fit(unbatched, verbose=0)


@pytest.mark.slow
@pytest.mark.parametrize("floatx", ["float64"], indirect=True)
def test_chunks_within_replicas_equal_more_replicas(
    floatx, mirrored_strategy_4, mirrored_strategy_2
):
    """2 replicas x 2 chunks (the unrolled chunk loop) == 4 replicas, global negatives."""
    images, labels = data(dtype=floatx)
    mirrored, start, mirrored_logs = one_step(
        mirrored_strategy_4, images, labels, None, lars_supcon, num_classes=3
    )
    cached, _, cached_logs = one_step(
        mirrored_strategy_2, images, labels, start, lars_supcon, chunk=4, num_classes=3
    )
    assert_step_equal(
        (cached, cached_logs),
        (mirrored, mirrored_logs),
        mirrored_strategy_4,
        start,
        1e-10,
        1e-12,
        cached_strategy=mirrored_strategy_2,
    )


@pytest.mark.slow
def test_xla_step_matches_the_graph_step():
    images, labels = data()
    results = []
    for jit in (False, True):
        trainer = make_trainer(chunk=4, num_classes=3)
        trainer.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=kclr.losses.SupCon(0.5, queue_size=8),
            jit_compile=jit,
        )
        logs = trainer.fit(dataset(images, labels), verbose=0).history
        results.append((logs["loss"][-1], [w.numpy() for w in trainer.weights]))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    for a, b in zip(results[1][1], results[0][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
