"""The MoCo v3 method through `ContrastiveTrainer`: the momentum copy, its EMA before the keys,
what gradients train, the refusals, and 2 replicas = 1 device."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from kclr_mocov3 import MoCoMLP, MoCoV3

import kclr
from kclr import registry
from kclr.methods import MethodError

BATCH, SIZE = 8, 16


def _views(seed=0, batch=BATCH):
    return np.random.default_rng(seed).uniform(size=(batch, 2, SIZE, SIZE, 3)).astype("float32")


def _small_encoder(sync_bn):
    """Two convolutions with (synchronised) BatchNorm: what MoCo v3 needs of an encoder, at a
    fraction of a ResNet's tracing time under MirroredStrategy."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = inputs
    for i, filters in enumerate((8, 16)):  # named: two builds have the same variable paths
        x = keras.layers.Conv2D(filters, 3, 2, "same", use_bias=False, name=f"conv{i}")(x)
        x = kclr.models.BatchNormalization(synchronized=sync_bn, name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(x), name="small")


def _trainer(sync_bn=False, total_steps=10, learning_rate=0.1, small=False, **config):
    if small:
        encoder = _small_encoder(sync_bn)
    else:
        encoder = registry.encoders.get(
            "resnet", depth=18, width_multiplier=0.125, cifar_stem=False, sync_bn=sync_bn
        )
    method = {"name": "moco_v3", "config": {
        "total_steps": total_steps, "temperature": 0.2, "predictor_hidden": 32,
        "sync_bn": sync_bn, **config,
    }}  # fmt: skip
    trainer = kclr.ContrastiveTrainer(
        encoder, MoCoMLP(2, 32, 16, True, sync_bn, name="projector"), method=method
    )
    trainer.compile(optimizer={"name": "sgd", "config": {"learning_rate": learning_rate}})
    return trainer


def _pairs(trainer):
    method = trainer.method
    base = trainer.encoder.weights + trainer.projection_head.weights
    copies = method.momentum_encoder.weights + method.momentum_projector.weights
    return list(zip(base, copies, strict=True))


def test_the_momentum_copy_follows_the_base_before_each_update():
    trainer = _trainer()
    method = trainer.method
    assert isinstance(method, MoCoV3)
    pairs = _pairs(trainer)
    for base, copy in pairs:  # starts equal, under its own names
        np.testing.assert_array_equal(base.numpy(), copy.numpy())
        assert copy.path.startswith("momentum/") and copy.path != base.path
    trained = {id(v) for v in trainer.trainable_variables}
    assert not any(id(copy) in trained for _, copy in pairs)  # never trained by gradients
    assert {id(v) for v in method.predictor.trainable_variables} <= trained
    assert all(id(b) in trained for b, _ in pairs if b.trainable)

    views = _views()
    trainer.train_on_batch(views)
    # Step 0: m = 0.99 on a copy equal to the base -> the copy is the base *before* the update.
    ema = [(b, c) for b, c in pairs if b.trainable]
    step1 = {c.path: (b.numpy(), c.numpy()) for b, c in ema}
    assert any(not np.allclose(b, c) for b, c in step1.values())  # the base moved, the copy not
    before = {b.path: b.numpy() for b, _ in pairs if b.trainable}
    trainer.train_on_batch(views)
    m = float(method.momentum_at(1))
    assert 0.99 < m < 1.0
    for base, copy in ema:
        b1, c1 = step1[copy.path]
        np.testing.assert_allclose(copy.numpy(), m * c1 + (1 - m) * b1, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(b1, before[base.path])
    # The momentum encoder runs in training mode: its BatchNorm statistics moved.
    moving = [c for b, c in pairs if not b.trainable and "moving_mean" in c.path]
    assert moving and any(np.abs(c.numpy()).sum() > 0 for c in moving)
    logs = trainer.get_metrics_result()
    assert float(logs["moco_momentum"]) == pytest.approx(m, abs=1e-6)
    assert trainer.export_encoder is trainer.encoder


def test_gradient_caching_is_refused_by_name():
    encoder = registry.encoders.get("resnet", depth=18, width_multiplier=0.125)
    method = {"name": "moco_v3", "config": {"total_steps": 10}}
    with pytest.raises(MethodError, match=r"'moco_v3' does not support gradient caching.*=2"):
        kclr.ContrastiveTrainer(
            encoder, MoCoMLP(2, 32, 16), method=method, gradient_cache_chunk_size=2
        )


def test_a_loss_and_a_missing_length_are_refused():
    trainer = _trainer()
    with pytest.raises(MethodError, match="'moco_v3' computes its own loss"):
        trainer.compile(optimizer="sgd", loss="ntxent")
    with pytest.raises(MethodError, match="total_steps"):
        registry.methods.get("moco_v3")
    assert registry.methods.get("moco_v3", momentum_cosine=False).momentum == 0.99


def test_stop_grad_conv1_freezes_the_first_convolution():
    trainer = _trainer(stop_grad_conv1=True)
    kernel = trainer.encoder.weights[0]
    assert len(kernel.shape) == 4 and not kernel.trainable
    assert id(kernel) not in {id(v) for v in trainer.trainable_variables}
    start = kernel.numpy()
    trainer.train_on_batch(_views())
    np.testing.assert_array_equal(kernel.numpy(), start)
    inputs = keras.Input((4,))
    dense_only = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    with pytest.raises(MethodError, match="no convolution kernel"):
        kclr.ContrastiveTrainer(
            dense_only, MoCoMLP(2, 8, 4),
            method={"name": "moco_v3", "config": {"total_steps": 1, "stop_grad_conv1": True}},
        )  # fmt: skip


def _one_step(strategy, views, initial=None):
    with strategy.scope():
        trainer = _trainer(sync_bn=True, learning_rate=0.05, small=True)
        if initial is not None:
            trainer.set_weights(initial)
        start = [w.copy() for w in trainer.get_weights()]
    data = tf.data.Dataset.from_tensor_slices(views).batch(len(views))
    history = trainer.fit(data, epochs=1, verbose=0)
    return start, {w.path: w.numpy() for w in trainer.weights}, history.history


def test_two_replicas_equal_one_device_on_the_global_batch(two_replicas):
    views = _views(1)
    initial, single, logs = _one_step(tf.distribute.get_strategy(), views)
    _, mirrored, logs2 = _one_step(two_replicas, views, initial)
    for key in ("loss", "contrast_acc", "contrast_entropy", "moco_momentum"):
        np.testing.assert_allclose(logs2[key][-1], logs[key][-1], rtol=1e-5, err_msg=key)
    assert set(single) == set(mirrored)
    assert any(path.startswith("momentum/") for path in single)
    for path, value in single.items():
        np.testing.assert_allclose(mirrored[path], value, rtol=1e-4, atol=1e-5, err_msg=path)


def test_stop_grad_conv1_freezes_a_keras_hub_vit_patch_projection():
    """`--stop-grad-conv1` on the encoder it is meant for: keras-hub's ViTBackbone. Its
    patch projection (kernel and bias) keeps its random weights through a step, equal in
    the momentum copy; the first transformer layer trains."""
    pytest.importorskip("keras_hub", reason="keras-hub is optional (kclr[keras-hub])")
    from kclr import spec

    vit = {"patch_size": 8, "num_layers": 1, "num_heads": 2, "hidden_dim": 16, "mlp_dim": 32}
    encoder = spec.build(registry.encoders, {"name": "keras_hub", "config": {
        "class_name": "ViTBackbone", "config": vit, "pooling": "cls"}},
        "encoder", run={"image_size": SIZE})  # fmt: skip
    method = {"name": "moco_v3", "config": {"total_steps": 4, "temperature": 0.2,
              "predictor_hidden": 16, "stop_grad_conv1": True, "momentum_cosine": False}}  # fmt: skip
    trainer = kclr.ContrastiveTrainer(encoder, MoCoMLP(3, 16, 8, True, name="projector"),
                                      method=method)  # fmt: skip
    trainer.compile(optimizer={"name": "sgd", "config": {"learning_rate": 0.5}})
    frozen = [v for v in encoder.weights if not v.trainable]
    assert sorted(len(v.shape) for v in frozen) == [1, 4]  # the patch conv's bias and kernel
    assert all("patch" in v.path for v in frozen), [v.path for v in frozen]
    assert frozen[0].shape[:2] == (8, 8) or frozen[1].shape[:2] == (8, 8)
    trained = {id(v) for v in trainer.trainable_variables}
    assert not any(id(v) in trained for v in frozen)
    before = {v.path: v.numpy() for v in encoder.weights}
    trainer.train_on_batch(_views())
    for v in frozen:
        np.testing.assert_array_equal(v.numpy(), before[v.path])
    copies = {v.path.removeprefix("momentum/"): v for v in trainer.method.momentum_encoder.weights}
    for v in frozen:
        np.testing.assert_array_equal(copies[v.path].numpy(), v.numpy())
    changed = [v.path for v in encoder.trainable_weights
               if not np.array_equal(v.numpy(), before[v.path])]  # fmt: skip
    assert any("transformer" in p or "encoder" in p for p in changed), changed
