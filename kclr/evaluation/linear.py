"""Linear evaluation: a linear classifier trained on frozen, cached encoder features."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kclr.evaluation.knn import topk_accuracy


def train_linear_classifier(
    train_features,
    train_labels,
    num_classes: int | None = None,
    epochs: int = 90,
    batch_size: int = 4096,
    learning_rate: float = 0.1,
    learning_rate_scaling: str = "linear",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    seed: int = 0,
    verbose: int = 0,
):
    """Trains `Dense(num_classes)` on fixed features with the SimCLR linear protocol.

    SGD with Nesterov momentum 0.9, peak learning rate `learning_rate * B / 256`
    (or `* sqrt(B)`), cosine decay to 0 without warmup, zero-initialised logits
    layer, and an L2 penalty `weight_decay * l2_loss(kernel)` in the loss, as the
    authors' `--optimizer=momentum` linear evaluation.

    Returns:
        The trained `keras.Sequential` classifier (features -> logits).
    """
    import keras
    import tensorflow as tf

    from kclr.data.teardown import closes_promptly

    features = np.asarray(train_features, dtype=np.float32)
    labels = np.asarray(train_labels).astype(np.int64).reshape(-1)
    num_classes = int(num_classes or labels.max() + 1)
    batch_size = int(min(batch_size, len(features)))
    steps_per_epoch = max(1, math.ceil(len(features) / batch_size))
    total_steps = steps_per_epoch * int(epochs)
    if learning_rate_scaling == "linear":
        peak = learning_rate * batch_size / 256.0
    elif learning_rate_scaling == "sqrt":
        peak = learning_rate * math.sqrt(batch_size)
    else:
        raise ValueError(
            f"learning_rate_scaling must be 'linear' or 'sqrt'; received {learning_rate_scaling!r}."
        )
    keras.utils.set_random_seed(seed)
    regularizer = keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None
    classifier = keras.Sequential(
        [
            keras.Input((features.shape[1],)),
            keras.layers.Dense(
                num_classes,
                kernel_initializer="zeros",
                kernel_regularizer=regularizer,
                name="head_supervised",
            ),
        ],
        name="linear_classifier",
    )
    schedule = keras.optimizers.schedules.CosineDecay(peak, max(1, total_steps))
    classifier.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=momentum, nesterov=True),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    dataset = (
        tf.data.Dataset.from_tensor_slices((features, labels))
        .shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(2)
    )
    # Autotuning off: deleting the iterator would wait for its thread (kclr.data.teardown).
    dataset = closes_promptly(dataset)
    classifier.fit(dataset, epochs=int(epochs), verbose=verbose, shuffle=False)
    return classifier


def linear_evaluation(
    train_features,
    train_labels,
    test_features,
    test_labels,
    num_classes: int | None = None,
    epochs: int = 90,
    batch_size: int = 4096,
    learning_rate: float = 0.1,
    weight_decay: float = 0.0,
    seed: int = 0,
    verbose: int = 0,
    learning_rate_scaling: str = "linear",
    momentum: float = 0.9,
) -> dict[str, Any]:
    """Linear-probe accuracy of cached features (top-1 / top-5 in %).

    Reference: Chen et al., 2020 (SimCLR), section 4 and Appendix B.6: a linear
    classifier on the frozen encoder, SGD with Nesterov momentum, lr 0.1 x B/256,
    batch 4096, 90 epochs on ImageNet, no regularisation.

    kclr trains on features computed once from unaugmented images (the
    "features cached once" probe), whereas the authors re-encode randomly cropped
    and flipped images every epoch; the maintainers report both give similar
    numbers (google-research/simclr#90). The classifier is trained on the
    training features only; the test split is never used for selection.

    Args:
        train_features, train_labels: `[N, D]` features and `[N]` labels.
        test_features, test_labels: `[M, D]` features and `[M]` labels.
        num_classes: number of classes (default: max label + 1).
        epochs: training epochs (90 in the paper; fewer is fine for small data).
        batch_size: batch size (4096 in the paper; clipped to N).
        learning_rate: base rate, scaled by `batch_size / 256`.
        weight_decay: L2 coefficient (the paper's linear probe uses none on
            ImageNet... 1e-6 in the README command).
        seed: shuffling / initialisation seed.
        learning_rate_scaling: `"linear"` (x B/256, the paper) or `"sqrt"`.
        momentum: Nesterov momentum (0.9).

    Returns:
        `{"top1", "top5", "train_top1", "epochs", "batch_size", "learning_rate"}`.

    Example:

    ```python
    result = kclr.evaluation.linear_evaluation(train_f, train_y, test_f, test_y, epochs=30)
    result["top1"]
    ```
    """
    labels = np.asarray(train_labels).astype(np.int64).reshape(-1)
    test_labels = np.asarray(test_labels).astype(np.int64).reshape(-1)
    num_classes = int(num_classes or max(labels.max(), test_labels.max()) + 1)
    classifier = train_linear_classifier(
        train_features,
        labels,
        num_classes=num_classes,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        learning_rate_scaling=learning_rate_scaling,
        momentum=momentum,
        weight_decay=weight_decay,
        seed=seed,
        verbose=verbose,
    )
    test_scores = classifier.predict(np.asarray(test_features, np.float32), verbose=0)
    train_scores = classifier.predict(np.asarray(train_features, np.float32), verbose=0)
    result = topk_accuracy(test_scores, test_labels)
    return {
        **result,
        "train_top1": topk_accuracy(train_scores, labels)["top1"],
        "epochs": int(epochs),
        "batch_size": int(min(batch_size, len(labels))),
        "learning_rate": float(learning_rate),
        "learning_rate_scaling": learning_rate_scaling,
        "momentum": float(momentum),
        "weight_decay": float(weight_decay),
    }
