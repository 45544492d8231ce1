"""ContrastiveTrainer: values of one step, supervised head, compile, save/load, errors."""

from __future__ import annotations

import pathlib
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import kclr

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "distribute"))
from kclr_tiny import TinyHead, dataset, tiny_data, tiny_encoder, tiny_trainer  # noqa: E402


def _reference_step_values(trainer, images, temperature):
    """Loss and official metrics computed by hand from a training-mode forward pass."""
    b, v = images.shape[:2]
    flat = np.concatenate([images[:, i] for i in range(v)])  # view-major
    h = trainer.encoder(flat, training=True)
    z = trainer.projection_head(h, training=True)[-1].numpy()
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    features = np.stack([z[i * b : (i + 1) * b] for i in range(v)], axis=1)
    loss = float(kclr.losses.nt_xent(features, temperature))
    logits = features[:, 0] @ features[:, 1].T / temperature
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    acc = float(np.mean(np.argmax(logits, 1) == np.arange(b)))
    entropy = float(-np.mean(np.sum(prob * np.log(prob + 1e-8), 1)))
    return loss, acc, entropy


def test_one_step_reports_loss_and_official_metrics():
    images, labels = tiny_data(batch=8, views=2)
    trainer = tiny_trainer(num_classes=None)
    trainer(images[:1])
    loss, acc, entropy = _reference_step_values(trainer, images, 0.5)
    trainer.compile(optimizer=kclr.optimizers.LARS(0.1), loss=kclr.losses.NTXent(0.5))
    logs = trainer.fit(dataset(images, labels, 8), epochs=1, verbose=0).history
    np.testing.assert_allclose(logs["loss"][-1], loss, rtol=1e-5)
    np.testing.assert_allclose(logs["contrast_acc"][-1], acc, rtol=1e-6)
    np.testing.assert_allclose(logs["contrast_entropy"][-1], entropy, rtol=1e-5)
    np.testing.assert_allclose(logs["learning_rate"][-1], 0.1, rtol=1e-6)
    assert "sup_acc" not in logs


def test_three_views_and_tuple_and_tensor_data():
    images, labels = tiny_data(batch=4, views=3)
    trainer = tiny_trainer(num_classes=None)
    trainer(images[:1])
    loss, _, _ = _reference_step_values(trainer, images, 0.1)
    trainer.compile(optimizer="sgd", loss="ntxent")  # Keras optimizer name, kclr loss name
    logs = trainer.fit(
        tf.data.Dataset.from_tensor_slices((images, labels)).batch(4), epochs=1, verbose=0
    ).history
    np.testing.assert_allclose(logs["loss"][-1], loss, rtol=1e-5)
    logs = trainer.fit(tf.data.Dataset.from_tensor_slices(images).batch(4), verbose=0).history
    assert np.isfinite(logs["loss"][-1])


def test_supervised_head_trains_on_stopped_gradient():
    images, labels = tiny_data(batch=8, classes=3)
    with_head, without = tiny_trainer(num_classes=3), tiny_trainer(num_classes=None)
    for t in (with_head, without):
        t(images[:1])
    without.set_weights(with_head.get_weights()[: len(without.weights)])
    head_kernel = with_head.supervised_head.kernel.numpy().copy()
    for t in (with_head, without):
        t.compile(optimizer=kclr.optimizers.LARS(0.5, weight_decay=1e-4), loss="supcon")
        t.fit(dataset(images, labels, 8), epochs=1, verbose=0)
    # The encoder and the projection head see only the contrastive loss.
    for a, b in zip(with_head.encoder.weights, without.encoder.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    assert np.abs(with_head.supervised_head.kernel.numpy() - head_kernel).max() > 1e-4


def test_supervised_loss_and_accuracy_values():
    images, labels = tiny_data(batch=8, classes=3)
    trainer = tiny_trainer(num_classes=3, seed=1)
    trainer(images[:1])
    flat = np.concatenate([images[:, 0], images[:, 1]])
    h = trainer.encoder(flat, training=True).numpy()
    logits = h @ trainer.supervised_head.kernel.numpy() + trainer.supervised_head.bias.numpy()
    both = np.concatenate([labels, labels])
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    sup_loss = -np.mean(logp[np.arange(16), both])
    kernel = trainer.supervised_head.kernel.numpy().copy()
    trainer.compile(optimizer=kclr.optimizers.LARS(0.1, weight_decay=1e-2), loss="supcon")
    logs = trainer.fit(dataset(images, labels, 8), epochs=1, verbose=0).history
    np.testing.assert_allclose(logs["sup_loss"][-1], sup_loss, rtol=1e-5)
    np.testing.assert_allclose(logs["sup_acc"][-1], np.mean(logits.argmax(1) == both), rtol=1e-6)
    # head_supervised: excluded from LARS (plain momentum SGD), its weight decay is
    # wd * l2_loss(kernel) in the loss, as the official code: k - lr * (g + wd * k).
    prob = np.exp(logp)
    prob[np.arange(16), both] -= 1.0
    grad = h.T @ prob / 16
    expected = kernel - 0.1 * (grad + 1e-2 * kernel)
    np.testing.assert_allclose(
        trainer.supervised_head.kernel.numpy(), expected, rtol=1e-4, atol=1e-7
    )


def test_save_load_round_trip(tmp_path):
    images, labels = tiny_data(batch=8)
    trainer = tiny_trainer(num_classes=3)
    trainer.compile(optimizer="lars", loss={"name": "supcon", "config": {"temperature": 0.2}})
    trainer.fit(dataset(images, labels, 8), epochs=1, verbose=0)
    path = tmp_path / "trainer.keras"
    trainer.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, kclr.ContrastiveTrainer)
    assert restored.num_classes == 3
    assert isinstance(restored.contrastive_loss, kclr.losses.SupCon)
    assert restored.contrastive_loss.temperature == 0.2
    assert isinstance(restored.optimizer, kclr.optimizers.LARS)
    for a, b in zip(trainer.weights, restored.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(restored(images), trainer(images), rtol=1e-6)
    logs = restored.evaluate(dataset(images, labels, 8), verbose=0, return_dict=True)
    assert set(logs) >= {"loss", "contrast_acc", "contrast_entropy", "sup_acc", "sup_loss"}


def test_callbacks_and_evaluate_see_metrics():
    images, labels = tiny_data(batch=8)
    seen = []
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(logs))
    trainer = tiny_trainer(num_classes=3)
    trainer.compile(optimizer=kclr.optimizers.LARS(0.2), loss="ntxent")
    trainer.fit(dataset(images, labels, 4), epochs=2, verbose=0, callbacks=[callback])
    assert len(seen) == 2
    assert set(seen[-1]) == {
        "loss",
        "contrast_acc",
        "contrast_entropy",
        "learning_rate",
        "sup_loss",
        "sup_acc",
    }
    assert seen[-1]["learning_rate"] == pytest.approx(0.2)


def test_device_augmenter_makes_views_from_images():
    images, _ = tiny_data(batch=4, views=1)
    raw = images[:, 0]
    keras.utils.set_random_seed(0)
    trainer = kclr.ContrastiveTrainer(
        tiny_encoder(), TinyHead(), device_augmenter=keras.layers.RandomFlip(seed=1), num_views=2
    )
    trainer.compile(optimizer="lars", loss="ntxent")
    logs = trainer.fit(tf.data.Dataset.from_tensor_slices(raw).batch(4), verbose=0).history
    assert np.isfinite(logs["loss"][-1]) and logs["loss"][-1] > 0


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(policy):
    images, labels = tiny_data(batch=4)
    keras.config.set_dtype_policy(policy)
    try:
        trainer = tiny_trainer(num_classes=3)
        trainer.compile(optimizer=kclr.optimizers.LARS(0.1), loss="ntxent")
        logs = trainer.fit(dataset(images, labels, 4), verbose=0).history
    finally:
        keras.config.set_dtype_policy("float32")
    assert np.isfinite(logs["loss"][-1]) and np.isfinite(logs["sup_loss"][-1])
    assert trainer.supervised_head.kernel.dtype == "float32"
    wrapped = isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert wrapped == (policy == "mixed_float16")


def test_jit_compile_step_matches_eager_graph():
    images, labels = tiny_data(batch=4)
    results = []
    for jit in (False, True):
        trainer = tiny_trainer(num_classes=None)
        trainer.compile(optimizer=kclr.optimizers.LARS(0.1), loss="ntxent", jit_compile=jit)
        results.append(trainer.fit(dataset(images, labels, 4), verbose=0).history["loss"][-1])
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5)


def test_errors_are_clear():
    images, labels = tiny_data(batch=4)
    trainer = tiny_trainer(num_classes=None)
    with pytest.raises(ValueError, match="Unknown loss .not_a_loss.. Known loss names"):
        trainer.compile(loss="not_a_loss")
    with pytest.raises(ValueError, match="reports its own metrics"):
        trainer.compile(loss="ntxent", metrics=["accuracy"])
    trainer.compile(loss="ntxent")
    with pytest.raises(ValueError, match="needs views"):
        trainer.fit(tf.data.Dataset.from_tensor_slices(images[:, 0]).batch(4), verbose=0)
    with pytest.raises(ValueError, match="'views' key"):
        trainer.train_step({"images": images})
    with pytest.raises(ValueError, match="num_classes"):
        kclr.ContrastiveTrainer(tiny_encoder(), TinyHead(), num_classes=0)


def test_the_batch_rules_are_checked_once_in_one_place(monkeypatch):
    from kclr.trainer import batches

    trainer = tiny_trainer(num_classes=None)
    trainer.compile(optimizer="sgd", loss={"name": "ntxent", "config": {"temperature": 0.5}})
    with pytest.raises(ValueError, match="global batch size 8 is larger than the 4"):
        trainer.check_batch(8, num_examples=4, source="tiny")
    calls = []
    real = batches.check_batch
    monkeypatch.setattr(batches, "check_batch", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    assert trainer.check_batch(8, num_examples=64) == 8
    images, labels = tiny_data(batch=16, views=2)
    data = tf.data.Dataset.from_tensor_slices({"views": images, "labels": labels})
    trainer.evaluate(data.batch(8, drop_remainder=True), verbose=0)  # the batch checked already
    assert calls == [8]
    trainer.evaluate(data.batch(4, drop_remainder=True), verbose=0)  # another batch: checked
    assert calls == [8, 4]
