"""Contrastive metrics as the official SimCLR code defines them (`tf2/metrics.py`)."""

from __future__ import annotations

import keras
import tensorflow as tf

from kclr.losses.core import check_features, cross_replica_concat, replica_info


def contrastive_logits(features, temperature: float = 0.1, normalize: bool = True):
    """Logits of view-0 anchors against the view-1 candidates of the global batch.

    This is the official `logits_ab` (`[B, N]`) with its labels: the positive of
    local sample `i` is global column `replica_id * B + i`.

    Args:
        features: `[batch, views, dim]` projections (at least 2 views).
        temperature: the loss temperature.
        normalize: L2-normalize first (official `hidden_norm=True`).

    Returns:
        `(logits [B, N], labels [B])` with integer labels.
    """
    anchors, candidates, offset = _anchors_and_candidates(features, normalize)
    return _logits(anchors, candidates, offset, temperature)


def contrast_metrics(features, temperature: float = 0.1, normalize: bool = True, rows=None):
    """`(contrast_acc, contrast_entropy)` of the local batch (official definitions):
    view-0 anchors against the global view-1 candidates (`contrastive_logits`).

    Args:
        features: `[batch, views, dim]` projections.
        temperature: the loss temperature.
        normalize: L2-normalize first.
        rows: `None` for all anchors at once, or anchors per block (a divisor of the
            static local batch): the `[rows, N]` logits of one block at a time, inside a
            `tf.while_loop`; each metric is then the mean of the blocks' equal-size means.
    """
    anchors, candidates, offset = _anchors_and_candidates(features, normalize)
    if rows is None:
        logits, positives = _logits(anchors, candidates, offset, temperature)
        return contrastive_accuracy(logits, positives), contrastive_entropy(logits)
    count = features.shape[0] // rows

    def block(k, correct, entropy):
        start = k * rows
        logits, positives = _logits(
            tf.gather(anchors, start + tf.range(rows)), candidates, offset + start, temperature
        )
        accuracy = contrastive_accuracy(logits, positives)
        entropy = entropy + tf.cast(contrastive_entropy(logits), entropy.dtype)
        return k + 1, correct + accuracy, entropy

    zeros = (tf.zeros([], tf.float32), tf.zeros([], anchors.dtype))
    _, correct, entropy = tf.while_loop(lambda k, *_: k < count, block, (tf.constant(0), *zeros))
    return correct / count, entropy / tf.cast(count, entropy.dtype)


def _anchors_and_candidates(features, normalize):
    """View-0 anchors `[B, D]`, global view-1 candidates `[N, D]` and this replica's
    first global row."""
    features = check_features(features)
    if normalize:
        features = tf.math.l2_normalize(features, axis=-1)
    _, replica_id = replica_info()
    anchors = features[:, 0]  # [B, D]
    candidates = cross_replica_concat(features[:, 1])  # [N, D]
    return anchors, candidates, replica_id * tf.shape(anchors)[0]


def _logits(anchors, candidates, offset, temperature):
    """`anchors @ candidates.T / temperature` and the positives' columns."""
    logits = tf.matmul(anchors, candidates, transpose_b=True) / temperature  # [n, N]
    return logits, offset + tf.range(tf.shape(anchors)[0])


def contrastive_accuracy(logits, labels):
    """Top-1 accuracy of finding the other view: `mean(argmax(logits) == labels)`."""
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.reduce_mean(tf.cast(tf.equal(predicted, tf.cast(labels, tf.int32)), tf.float32))


def contrastive_entropy(logits):
    """Mean entropy of `softmax(logits)`, with the official `+1e-8` inside the log."""
    prob = tf.nn.softmax(logits, axis=-1)
    return -tf.reduce_mean(tf.reduce_sum(prob * tf.math.log(prob + 1e-8), axis=-1))


class LastValue(keras.metrics.Metric):
    """A metric that reports the last value it was given (e.g. the learning rate)."""

    def __init__(self, name: str = "last_value", dtype=None):
        super().__init__(name=name, dtype=dtype)
        # "mean": every replica writes the same value; the mean reads it back once.
        self.value = self.add_variable(
            shape=(), initializer="zeros", name="value", aggregation="mean"
        )

    def update_state(self, value):
        self.value.assign(tf.cast(value, self.value.dtype))

    def result(self):
        return tf.identity(self.value)

    def reset_state(self):
        self.value.assign(0.0)
