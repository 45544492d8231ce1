"""MoCo v3's contrastive loss, as `MoCo.contrastive_loss` and `MoCo.forward` of the authors.

Reference: Chen, Xie, He, "An Empirical Study of Training Self-Supervised Vision
Transformers", ICCV 2021 (facebookresearch/moco-v3, `moco/builder.py`).
"""

from __future__ import annotations

import tensorflow as tf

from kclr.losses import cross_replica_concat


def _replica_id():
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: one replica's view
        return tf.constant(0, tf.int32)
    return tf.cast(context.replica_id_in_sync_group, tf.int32)


def contrastive_loss(q, k, temperature: float = 1.0):
    """`ctr(q, k)` of one replica: the cross-entropy of `q·k_all/T`, times `2T`.

    `q` and `k` (`[N, D]`) are L2-normalised; the keys are gathered from every replica in
    replica order (no gradient reaches them), so this replica's positives are the rows
    `N * replica_id + i` of the gathered keys; the cross-entropy is the mean over the `N`
    local queries. The value is the authors' (not divided by the number of replicas;
    `MoCoV3.step` divides, Keras's loss convention).
    """
    q = tf.math.l2_normalize(tf.cast(q, tf.float32), axis=1)
    k = tf.math.l2_normalize(tf.cast(k, tf.float32), axis=1)
    k_all = tf.stop_gradient(cross_replica_concat(tf.stop_gradient(k)))  # [R*N, D]
    logits = tf.matmul(q, k_all, transpose_b=True) / temperature
    n = tf.shape(q)[0]
    labels = tf.range(n) + n * _replica_id()
    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    return tf.reduce_mean(cross_entropy) * (2.0 * temperature)


def symmetric_loss(q1, q2, k1, k2, temperature: float = 1.0):
    """`ctr(q1, k2) + ctr(q2, k1)`: each view's query against the other view's key."""
    return contrastive_loss(q1, k2, temperature) + contrastive_loss(q2, k1, temperature)
