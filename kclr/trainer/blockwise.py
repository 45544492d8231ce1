"""The contrastive loss, its gradient and the contrast metrics, a block of anchors at a time.

Gradient caching (`kclr.trainer.gradient_cache`) holds the projections `[B, V, D]` of a
whole batch and needs the loss of that batch and its gradient with respect to every
projection. Computed in one piece, that takes `[V*B, V*B]` logits (and their saved
activations): 256 MB per copy at B = 4096 in float32, the largest tensor of the step.
Here the anchors are taken a block of `n` images at a time against all the candidates
(`[V*n, V*M]` logits, at most `BLOCK_LOGITS` entries), inside a `tf.while_loop`, and
the per-block gradients with respect to all projections are summed. Losses without a
`per_sample(..., candidates=...)` method are computed in one piece.

Under a `tf.distribute` strategy the candidates are gathered from every replica (`M`
images in all), the loss is divided by the replica count as Keras does, and the
gradient of the all-gather is its backward: a sum over the replicas, keeping this
replica's rows.
"""

from __future__ import annotations

import tensorflow as tf

from kclr.losses.core import ContrastiveLoss, cross_replica_concat, replica_info
from kclr.trainer import metrics

# The most logits one block holds (`[V*n, V*M]` entries; 8 MiB in float32).
BLOCK_LOGITS = 2**21


def block_rows(local_batch: int, logits_per_anchor: int) -> int:
    """Anchors `n` per block: the largest divisor of the local batch whose block of
    logits stays within `BLOCK_LOGITS` (at least one anchor)."""
    most = max(1, BLOCK_LOGITS // max(1, logits_per_anchor))
    return max(d for d in range(1, min(local_batch, most) + 1) if local_batch % d == 0)


def supports_blocks(loss_fn) -> bool:
    """True for kclr contrastive losses that can score a block of anchors (NT-Xent, SupCon)."""
    return (
        isinstance(loss_fn, ContrastiveLoss)
        and type(loss_fn).per_sample is not ContrastiveLoss.per_sample
        and loss_fn.reduction == "sum_over_batch_size"
    )


def loss_and_gradient(loss_fn, optimizer, features, labels, blocks: bool = True):
    """The loss of the local batch and its gradient `[B, V, D]` w.r.t. `features`.

    Args:
        loss_fn: the compiled contrastive loss.
        optimizer: the optimizer; the gradient is of `optimizer.scale_loss(loss)`, so
            that mixed-precision loss scaling applies as without caching.
        features: projections `[B, V, D]` of the local batch (static `B` and `V`).
        labels: `[B]` labels or `None`.
        blocks: `False` computes the loss in one piece.
    """
    if not (blocks and supports_blocks(loss_fn)):
        with tf.GradientTape() as tape:
            tape.watch(features)
            loss = loss_fn(labels, features)
            scaled = optimizer.scale_loss(loss)
        return loss, tape.gradient(scaled, features)
    local_batch, num_views = features.shape[0], features.shape[1]
    replicas, replica_id = replica_info()
    offset = replica_id * local_batch
    everyone = cross_replica_concat(features)  # [M, V, D], M = replicas * B
    all_labels = None
    if labels is not None:
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        all_labels = cross_replica_concat(labels)
    rows = block_rows(local_batch, num_views * num_views * replicas * local_batch)
    count = local_batch // rows
    if labels is not None:
        labels = tf.reshape(labels, [count, rows])

    def block(k, total, grads):
        start = offset + k * rows
        with tf.GradientTape() as tape:
            tape.watch(everyone)
            anchors = tf.gather(everyone, start + tf.range(rows))  # [n, V, D]
            block_labels = None if labels is None else labels[k]
            per_sample = loss_fn.per_sample(
                block_labels, anchors, candidates=(everyone, all_labels, start)
            )
            # The Keras reduction: mean over the local batch, / replicas.
            value = tf.reduce_sum(per_sample) / tf.cast(local_batch * replicas, per_sample.dtype)
            scaled = optimizer.scale_loss(value)
        return k + 1, total + value, grads + tape.gradient(scaled, everyone)

    _, loss, grads = tf.while_loop(
        lambda k, *_: k < count,
        block,
        (tf.constant(0), tf.zeros([], everyone.dtype), tf.zeros_like(everyone)),
        parallel_iterations=1,
    )
    if replicas > 1:  # the backward of the all-gather: sum over replicas, own rows
        context = tf.distribute.get_replica_context()
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    return loss, tf.gather(grads, offset + tf.range(local_batch))


def contrast_metrics(loss_fn, features):
    """`contrast_acc` and `contrast_entropy` of the local batch
    (`kclr.trainer.metrics.contrast_metrics`), a block of view-0 anchors at a time."""
    local_batch = features.shape[0]
    replicas, _ = replica_info()
    return metrics.contrast_metrics(
        features,
        getattr(loss_fn, "temperature", 1.0),
        getattr(loss_fn, "normalize", True),
        rows=block_rows(local_batch, replicas * local_batch),
    )
