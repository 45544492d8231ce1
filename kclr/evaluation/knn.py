"""Weighted cosine k-nearest-neighbour classification on features.

Reference: Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination" (InstDisc), CVPR 2018, section 3.4; the same monitor is used by
solo-learn and most self-supervised codebases to follow training without a
linear probe.

Each test feature votes with its `k` most cosine-similar training features; a
neighbour with similarity `s` adds `exp(s / temperature)` to its class.
"""

from __future__ import annotations

import numpy as np


def _normalize(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def _check(train_features, train_labels, test_features, test_labels) -> None:
    if len(train_features) != len(train_labels):
        raise ValueError(
            f"train_features and train_labels disagree: {len(train_features)} features "
            f"but {len(train_labels)} labels."
        )
    if test_labels is not None and len(test_features) != len(test_labels):
        raise ValueError(
            f"test_features and test_labels disagree: {len(test_features)} features "
            f"but {len(test_labels)} labels."
        )
    if len(train_features) == 0:
        raise ValueError("kNN needs at least one training feature; received none.")


def knn_scores(
    train_features,
    train_labels,
    test_features,
    k: int = 200,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Class scores `[num_test, num_classes]` of a temperature-weighted cosine kNN.

    Args:
        train_features: `[N, D]` features of the labelled memory bank.
        train_labels: `[N]` integer labels.
        test_features: `[M, D]` features to classify.
        k: number of neighbours (clipped to N).
        temperature: weight temperature; a neighbour adds `exp(cos / temperature)`.
        num_classes: number of classes (default: `max(label) + 1`).
        chunk_size: test features processed at once (bounds memory to chunk x N).

    Returns:
        float32 array `[M, num_classes]` of summed weights.
    """
    _check(train_features, train_labels, test_features, None)
    if k < 1 or temperature <= 0:
        raise ValueError(
            f"kNN needs k >= 1 and temperature > 0; received k={k}, temperature={temperature}."
        )
    train = _normalize(train_features)
    test = _normalize(test_features)
    labels = np.asarray(train_labels).astype(np.int64).reshape(-1)
    num_classes = int(num_classes or labels.max() + 1)
    k = min(int(k), len(train))
    scores = np.zeros((len(test), num_classes), dtype=np.float32)
    for start in range(0, len(test), chunk_size):
        similarity = test[start : start + chunk_size] @ train.T  # [m, N]
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]  # [m, k]
        top_similarity = np.take_along_axis(similarity, top, axis=1)
        weights = np.exp((top_similarity - 1.0) / temperature)  # shifted: same ranking, no overflow
        rows = np.repeat(np.arange(len(top)), k)
        np.add.at(
            scores[start : start + len(top)], (rows, labels[top].reshape(-1)), weights.reshape(-1)
        )
    return scores


def knn_evaluate(
    train_features,
    train_labels,
    test_features,
    test_labels,
    k: int = 200,
    temperature: float = 0.07,
    num_classes: int | None = None,
) -> dict[str, float]:
    """Top-1 and top-5 accuracy (in %) of a weighted cosine kNN classifier.

    Returns:
        `{"top1": ..., "top5": ...}`, percentages; top-5 equals 100 when there are
        5 classes or fewer.
    """
    _check(train_features, train_labels, test_features, test_labels)
    labels = np.asarray(test_labels).astype(np.int64).reshape(-1)
    num_classes = int(num_classes or max(np.asarray(train_labels).max(), labels.max(initial=0)) + 1)
    scores = knn_scores(
        train_features, train_labels, test_features, k, temperature, num_classes=num_classes
    )
    return topk_accuracy(scores, labels)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 and top-5 accuracy in % of `scores [M, C]` against integer `labels [M]`."""
    scores = np.asarray(scores)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    # Ties are broken towards the lower class index (stable sort of -scores).
    order = np.argsort(-scores, axis=1, kind="stable")
    top1 = float(np.mean(order[:, 0] == labels) * 100.0)
    top5 = float(np.mean(np.any(order[:, :5] == labels[:, None], axis=1)) * 100.0)
    return {"top1": top1, "top5": top5}


def knn_accuracy(
    train_features,
    train_labels,
    test_features,
    test_labels,
    k: int = 200,
    temperature: float = 0.07,
) -> float:
    """Top-1 accuracy (in %) of a temperature-weighted cosine kNN classifier.

    Reference: Wu et al., 2018 (InstDisc), the kNN monitor of self-supervised training.

    Args:
        train_features: `[N, D]` features of the labelled training split.
        train_labels: `[N]` integer labels.
        test_features: `[M, D]` features to classify.
        test_labels: `[M]` integer labels.
        k: number of neighbours (200 as InstDisc / solo-learn).
        temperature: vote temperature (0.07).

    Returns:
        Top-1 accuracy in percent.

    Example:

    ```python
    acc = kclr.evaluation.knn_accuracy(train_f, train_y, test_f, test_y, k=20)
    ```
    """
    return knn_evaluate(
        train_features, train_labels, test_features, test_labels, k=k, temperature=temperature
    )["top1"]
