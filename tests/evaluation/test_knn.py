"""Weighted cosine kNN against a NumPy brute-force reference and on known structure."""

from __future__ import annotations

import numpy as np
import pytest

from kclr.evaluation import knn_accuracy, knn_evaluate, knn_scores, topk_accuracy


def _reference_scores(train, labels, test, k, temperature, num_classes):
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    out = np.zeros((len(test), num_classes))
    for i, query in enumerate(test):
        similarity = train @ query
        order = np.argsort(-similarity)[:k]
        for j in order:
            out[i, labels[j]] += np.exp(similarity[j] / temperature)
    return out


def test_scores_match_bruteforce_reference():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(300, 16)).astype(np.float32)
    labels = rng.integers(0, 5, 300)
    test = rng.normal(size=(40, 16)).astype(np.float32)
    ours = knn_scores(train, labels, test, k=25, temperature=0.1, num_classes=5, chunk_size=7)
    ref = _reference_scores(train, labels, test, 25, 0.1, 5)
    # kclr shifts similarities by -1 before exp (no overflow): same ratios.
    np.testing.assert_allclose(ours * np.exp(1 / 0.1), ref, rtol=1e-4)
    assert (ours.argmax(1) == ref.argmax(1)).all()


def test_clustered_features_are_classified_perfectly_and_noise_is_chance():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 32)) * 5
    y_train = np.repeat(np.arange(4), 100)
    y_test = np.repeat(np.arange(4), 25)
    x_train = centres[y_train] + rng.normal(size=(400, 32))
    x_test = centres[y_test] + rng.normal(size=(100, 32))
    assert knn_accuracy(x_train, y_train, x_test, y_test, k=20) == 100.0
    noise = knn_accuracy(
        rng.normal(size=(400, 32)), y_train, rng.normal(size=(100, 32)), y_test, k=20
    )
    assert noise < 45.0


def test_topk_and_labels_shapes():
    scores = np.array([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05]])
    assert topk_accuracy(scores, np.array([2, 0])) == {"top1": 50.0, "top5": 100.0}
    result = knn_evaluate(np.eye(3), [0, 1, 2], np.eye(3), [0, 1, 2], k=1)
    assert result["top1"] == 100.0


def test_mismatched_lengths_are_clear_errors():
    with pytest.raises(ValueError, match="3 features but 2 labels"):
        knn_accuracy(np.ones((3, 2)), [0, 1], np.ones((1, 2)), [0])
    with pytest.raises(ValueError, match="k >= 1"):
        knn_scores(np.ones((3, 2)), [0, 1, 1], np.ones((1, 2)), k=0)
