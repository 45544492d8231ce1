"""Linear evaluation on features with known structure."""

from __future__ import annotations

import numpy as np

from kclr.evaluation import linear_evaluation


def test_linearly_separable_features_reach_full_accuracy_and_shuffled_labels_do_not():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 3))
    x_train = rng.normal(size=(600, 16)).astype(np.float32)
    y_train = (x_train @ w).argmax(1)
    x_test = rng.normal(size=(300, 16)).astype(np.float32)
    y_test = (x_test @ w).argmax(1)
    result = linear_evaluation(
        x_train, y_train, x_test, y_test, epochs=30, batch_size=64, learning_rate=0.4
    )
    assert result["top1"] > 92.0, result
    assert result["top5"] == 100.0  # 3 classes
    assert result["batch_size"] == 64 and result["epochs"] == 30
    shuffled = linear_evaluation(
        x_train, rng.permutation(y_train), x_test, y_test, epochs=5, batch_size=64
    )
    assert shuffled["top1"] < 55.0, shuffled
