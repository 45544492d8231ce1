"""contrast_acc and contrast_entropy as the official tf2/metrics.py defines them."""

from __future__ import annotations

import numpy as np

import kclr


def test_metrics_on_golden_input(golden):
    x = np.asarray(golden["ntxent_input"], np.float64)
    h = x / np.linalg.norm(x, axis=1, keepdims=True)
    h1, h2 = h[:4], h[4:]
    logits_ab = h1 @ h2.T / 0.5  # the official logits_ab, labels = identity
    prob = np.exp(logits_ab) / np.exp(logits_ab).sum(1, keepdims=True)
    expected_acc = np.mean(np.argmax(logits_ab, 1) == np.arange(4))
    expected_entropy = -np.mean(np.sum(prob * np.log(prob + 1e-8), 1))

    features = np.stack([x[:4], x[4:]], axis=1).astype(np.float32)
    logits, labels = kclr.trainer.contrastive_logits(features, temperature=0.5)
    np.testing.assert_allclose(logits.numpy(), logits_ab, rtol=1e-5)
    np.testing.assert_array_equal(labels.numpy(), np.arange(4))
    np.testing.assert_allclose(
        float(kclr.trainer.contrastive_accuracy(logits, labels)), expected_acc
    )
    np.testing.assert_allclose(
        float(kclr.trainer.contrastive_entropy(logits)), expected_entropy, rtol=1e-5
    )


def test_accuracy_is_one_for_identical_views_and_entropy_drops():
    f = np.eye(4, dtype=np.float32)
    features = np.stack([f, f], axis=1)
    logits, labels = kclr.trainer.contrastive_logits(features, temperature=0.01)
    assert float(kclr.trainer.contrastive_accuracy(logits, labels)) == 1.0
    assert float(kclr.trainer.contrastive_entropy(logits)) < 1e-3
    uniform = np.ones((4, 2, 3), np.float32)
    logits, _ = kclr.trainer.contrastive_logits(uniform, temperature=1.0)
    np.testing.assert_allclose(
        float(kclr.trainer.contrastive_entropy(logits)), np.log(4), rtol=1e-5
    )
