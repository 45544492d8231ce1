"""The shared core of kclr's contrastive losses: global gathering and masked logits.

NT-Xent (SimCLR) is SupCon without labels, so both are computed by
`contrastive_loss` below. Under a `tf.distribute` strategy the candidates
(negatives and positives) come from the whole global batch: features and labels
are gathered from every replica with a differentiable all-gather, and each
replica computes the loss of its local anchors against the global candidates.

Shapes in comments: `B` local batch, `N` global batch (`B * replicas`), `V`
views, `A` anchor views (`V` in mode "all", 1 in mode "one"), `D` feature dim.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import tensorflow as tf

LARGE_NUM = 1e9  # the official code removes self-similarity by subtracting this

CONTRAST_MODES = ("all", "one")
SUMMATIONS = ("outside", "inside")


class MaskedLogits(NamedTuple):
    """Logits of local anchors against global candidates, with their masks."""

    logits: tf.Tensor  # [A*B, V*N], self pushed down by LARGE_NUM
    positives: tf.Tensor  # [A*B, V*N], 1 for positives, self excluded
    negatives: tf.Tensor  # [A*B, V*N], 1 for negatives
    self_mask: tf.Tensor  # [A*B, V*N], 1 at the anchor itself


def replica_info() -> tuple[int, tf.Tensor]:
    """Returns `(num_replicas, replica_id)` of the current replica context.

    Outside a replica context (or with a single replica) this is `(1, 0)`.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return 1, tf.constant(0, tf.int32)
    return context.num_replicas_in_sync, tf.cast(context.replica_id_in_sync_group, tf.int32)


def cross_replica_concat(tensor: tf.Tensor) -> tf.Tensor:
    """Concatenates `tensor` from all replicas along axis 0, differentiably.

    Uses the official SimCLR trick: scatter the local tensor into slot
    `replica_id` of a zero tensor `[R, ...]` and all-reduce it with SUM. The
    gradient of an all-reduce SUM is an all-reduce SUM of the upstream
    gradients, so every replica receives the gradient that the losses of all
    replicas send to its own features. Integer tensors are gathered as float32
    (exact for values below 2**24) and cast back; they carry no gradient.

    Outside a replica context, or with one replica, returns `tensor` unchanged.
    """
    num_replicas, replica_id = replica_info()
    if num_replicas == 1:
        return tensor
    context = tf.distribute.get_replica_context()
    dtype = tensor.dtype
    work = tensor if dtype.is_floating else tf.cast(tensor, tf.float32)
    # [R, B, ...] with the local tensor in slot replica_id and zeros elsewhere.
    extended = tf.scatter_nd(
        indices=[[replica_id]],
        updates=work[tf.newaxis],
        shape=tf.concat([[num_replicas], tf.shape(work)], axis=0),
    )
    extended = context.all_reduce(tf.distribute.ReduceOp.SUM, extended)
    # [R * B, ...]
    out = tf.reshape(extended, tf.concat([[-1], tf.shape(work)[1:]], axis=0))
    if not dtype.is_floating:
        out = tf.cast(tf.round(out), dtype)
    return out


def check_features(features: tf.Tensor, name: str = "features") -> tf.Tensor:
    """Validates `[batch, views, dim]` features; half precision is cast to float32."""
    features = tf.convert_to_tensor(features)
    if features.shape.rank is not None and features.shape.rank != 3:
        raise ValueError(
            f"`{name}` must have shape [batch, views, dim]; received a tensor of shape "
            f"{features.shape}. For SimCLR's two views stack them on axis 1: "
            "`ops.stack([z1, z2], axis=1)`."
        )
    return to_loss_dtype(features)


def to_loss_dtype(x: tf.Tensor) -> tf.Tensor:
    """Casts half-precision (mixed precision) tensors to float32; keeps float32/64."""
    x = tf.convert_to_tensor(x)
    if x.dtype in (tf.float32, tf.float64):
        return x
    return tf.cast(x, tf.float32)


def masked_logits(
    features: tf.Tensor,
    labels: tf.Tensor | None = None,
    temperature: float = 0.1,
    contrast_mode: str = "all",
    normalize: bool = True,
    queue=None,
    candidates=None,
) -> MaskedLogits:
    """Builds the logits of local anchors against global candidates.

    Args:
        features: `[B, V, D]` local features.
        labels: optional `[B]` integer labels; `None` means each sample is its
            own class (SimCLR).
        temperature: softmax temperature.
        contrast_mode: `"all"` (every view is an anchor) or `"one"` (view 0 only).
        normalize: L2-normalize the features first (the official SimCLR
            `hidden_norm=True`; HobbitLong's model normalizes before the loss).
        queue: optional `(features [Q, D], labels [Q], valid [Q])` of a memory
            queue (`MemoryQueue.candidates()`): `Q` extra candidate columns after
            the batch's, never anchors. A valid entry with the anchor's label is a
            positive (never with `labels=None`); every valid entry is in the
            denominator; invalid (unfilled) entries are masked out like self.
        candidates: optional `(features [M, V, D], labels [M] or None, offset)`:
            use these candidates instead of gathering them from the replicas;
            `features` are rows `[offset, offset + B)` of them. Gradient caching
            uses it to compute the loss of a batch one block of anchors at a time.

    Returns:
        `MaskedLogits(logits, positives, negatives, self_mask)`: `logits` `[A*B, V*N (+Q)]`
        with self-similarity already pushed down by 1e9, and float masks of the
        same shape for positives (self excluded), negatives and self.
    """
    if contrast_mode not in CONTRAST_MODES:
        raise ValueError(
            f"`contrast_mode` must be one of {CONTRAST_MODES}; received {contrast_mode!r}."
        )
    features = check_features(features)
    if normalize:
        features = tf.math.l2_normalize(features, axis=-1)
    batch = tf.shape(features)[0]
    views = tf.shape(features)[1]
    dim = tf.shape(features)[2]

    global_features, given_labels, offset = _gather_candidates(features, candidates, normalize)
    global_batch = tf.shape(global_features)[0]

    # Candidates in view-major order, as the official code: [V*N, D].
    contrast = tf.reshape(tf.transpose(global_features, [1, 0, 2]), [-1, dim])
    if contrast_mode == "all":
        anchor = tf.reshape(tf.transpose(features, [1, 0, 2]), [-1, dim])  # [V*B, D]
        anchor_views = views
    else:
        anchor = features[:, 0]  # [B, D]
        anchor_views = 1

    logits = tf.matmul(anchor, contrast, transpose_b=True) / temperature  # [A*B, V*N]

    # Positives between samples: [B, N].
    local_index = tf.range(batch) + offset  # global index of each local sample
    if labels is None:
        same = tf.equal(local_index[:, None], tf.range(global_batch)[None, :])
    else:
        labels = tf.reshape(tf.convert_to_tensor(labels), [-1])
        if labels.dtype.is_floating:
            labels = tf.cast(labels, tf.int32)
        if candidates is None:
            global_labels = cross_replica_concat(labels)  # [N]
        else:
            global_labels = tf.cast(tf.reshape(given_labels, [-1]), labels.dtype)
        same = tf.equal(labels[:, None], global_labels[None, :])
    same = tf.cast(same, features.dtype)
    same = tf.tile(same, [anchor_views, views])  # [A*B, V*N]

    # Self mask: anchor (view a, sample i) is candidate (view a, sample offset+i).
    anchor_view_index = tf.repeat(tf.range(anchor_views), batch)  # [A*B]
    anchor_sample_index = tf.tile(local_index, [anchor_views])  # [A*B]
    self_column = anchor_view_index * global_batch + anchor_sample_index
    self_mask = tf.one_hot(self_column, views * global_batch, dtype=features.dtype)

    positives = same * (1.0 - self_mask)
    logits = logits - self_mask * LARGE_NUM
    negatives = 1.0 - same
    columns = MaskedLogits(logits, positives, negatives, self_mask)
    if queue is not None:
        queue_columns = _queue_columns(anchor, labels, anchor_views, queue, temperature, normalize)
        columns = MaskedLogits(
            *[tf.concat(pair, axis=1) for pair in zip(columns, queue_columns, strict=True)]
        )
    return columns


def _gather_candidates(features, candidates, normalize):
    """`(global features [N, V, D], given labels or None, offset of the local rows)`."""
    if candidates is None:
        _, replica_id = replica_info()
        return cross_replica_concat(features), None, replica_id * tf.shape(features)[0]
    global_features, given_labels, offset = candidates
    global_features = check_features(global_features, "candidates")
    if normalize:
        global_features = tf.math.l2_normalize(global_features, axis=-1)
    return global_features, given_labels, offset


def _queue_columns(anchor, labels, anchor_views, queue, temperature, normalize) -> MaskedLogits:
    """The `Q` memory-queue columns of `masked_logits` for anchors `[A*B, D]`."""
    queue_features, queue_labels, valid = queue
    queue_features = tf.stop_gradient(tf.cast(queue_features, anchor.dtype))  # [Q, D]
    if normalize:
        queue_features = tf.math.l2_normalize(queue_features, axis=-1)
    valid = tf.cast(valid, anchor.dtype)[None, :]  # [1, Q]
    queue_logits = tf.matmul(anchor, queue_features, transpose_b=True) / temperature
    if labels is None:
        queue_same = tf.zeros_like(queue_logits)
    else:
        anchor_labels = tf.tile(labels, [anchor_views])  # [A*B]
        queue_labels = tf.cast(tf.reshape(queue_labels, [-1]), labels.dtype)
        queue_same = tf.cast(tf.equal(anchor_labels[:, None], queue_labels[None, :]), valid.dtype)
    queue_same = queue_same * valid  # [A*B, Q]
    return MaskedLogits(
        queue_logits - (1.0 - valid) * LARGE_NUM,  # unfilled slots masked out like self
        queue_same,
        valid - queue_same,
        tf.zeros_like(queue_same),
    )


def contrastive_loss(
    features: tf.Tensor,
    labels: tf.Tensor | None = None,
    temperature: float = 0.1,
    base_temperature: float | None = None,
    contrast_mode: str = "all",
    summation: str = "outside",
    normalize: bool = True,
    reduction: str | None = "mean",
    queue=None,
    candidates=None,
) -> tf.Tensor:
    """SupCon / NT-Xent loss of local anchors against global candidates.

    Reference: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020
    (https://arxiv.org/abs/2004.11362); Chen et al., "A Simple Framework for
    Contrastive Learning of Visual Representations", ICML 2020
    (https://arxiv.org/abs/2002.05709).

    The denominator of each anchor covers every candidate except itself. With
    `summation="outside"` (L_out, the paper's choice) the log-probabilities of
    the positives are averaged; with `"inside"` (L_in) the probabilities are
    averaged inside the log. Anchors without positives (one view and a label
    seen once) contribute 0 and still count in the mean, as HobbitLong's code
    since 2023 (no NaN).

    Args:
        features: `[B, V, D]` features (any number of views `V`).
        labels: optional `[B]` integer labels. `None` gives SimCLR (NT-Xent).
        temperature: softmax temperature.
        base_temperature: the loss is multiplied by `temperature / base_temperature`;
            `None` means `base_temperature = temperature` (no scaling).
        contrast_mode: `"all"` or `"one"`.
        summation: `"outside"` (L_out) or `"inside"` (L_in).
        normalize: L2-normalize the features first.
        reduction: `"mean"` (scalar mean over anchors), `"none"` / `None` (per-sample
            loss `[B]`, averaged over the sample's anchor views).
        queue: optional memory-queue candidates `(features, labels, valid)`, see
            `masked_logits`.
        candidates: optional explicit candidates `(features, labels, offset)`
            instead of the replicas' gathered batch, see `masked_logits`.

    Returns:
        Scalar loss, or `[B]` per-sample losses.
    """
    if summation not in SUMMATIONS:
        raise ValueError(f"`summation` must be one of {SUMMATIONS}; received {summation!r}.")
    logits, positives, _, _ = masked_logits(
        features,
        labels,
        temperature,
        contrast_mode=contrast_mode,
        normalize=normalize,
        queue=queue,
        candidates=candidates,
    )
    # Row-wise log-softmax over all candidates but self: [A*B, V*N].
    log_prob = tf.nn.log_softmax(logits, axis=-1)
    num_positives = tf.reduce_sum(positives, axis=-1)  # [A*B]
    has_positive = num_positives > 0
    safe_count = tf.where(has_positive, num_positives, tf.ones_like(num_positives))
    if summation == "outside":
        safe_log_prob = tf.where(positives > 0, log_prob, tf.zeros_like(log_prob))
        mean_log_prob_pos = tf.reduce_sum(safe_log_prob, axis=-1) / safe_count
    else:
        masked = tf.where(positives > 0, log_prob, tf.fill(tf.shape(log_prob), -LARGE_NUM))
        mean_log_prob_pos = tf.reduce_logsumexp(masked, axis=-1) - tf.math.log(safe_count)
    mean_log_prob_pos = tf.where(has_positive, mean_log_prob_pos, tf.zeros_like(mean_log_prob_pos))
    scale = 1.0 if base_temperature is None else temperature / base_temperature
    per_anchor = -scale * mean_log_prob_pos  # [A*B]

    batch = tf.shape(features)[0]
    per_sample = tf.reduce_mean(tf.reshape(per_anchor, [-1, batch]), axis=0)  # [B]
    if reduction in (None, "none"):
        return per_sample
    if reduction == "mean":
        return tf.reduce_mean(per_sample)
    raise ValueError(f"`reduction` must be 'mean' or 'none'; received {reduction!r}.")


def _no_labels(labels) -> bool:
    if labels is None:
        return True
    labels = tf.convert_to_tensor(labels)
    return labels.shape.rank == 1 and labels.shape[0] == 0


class ContrastiveLoss(keras.losses.Loss):
    """Base of kclr's Keras losses: `y_true` are labels or `None`, `y_pred` features.

    Keras's `Loss.__call__` cannot take `y_true=None`; this base passes an empty
    tensor instead, which `call` reads back as "no labels".
    """

    def __call__(self, y_true, y_pred, sample_weight=None):
        if y_true is None:
            y_true = tf.zeros([0], tf.float32)
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    @staticmethod
    def labels_or_none(y_true):
        return None if _no_labels(y_true) else y_true

    def per_sample(self, y_true, y_pred, candidates=None):
        """Per-sample losses `[B]` of `call`, optionally against explicit `candidates`.

        Losses built on `contrastive_loss` override this; gradient caching then
        computes a large batch's loss one block of anchors at a time. The default
        (`None`) means "not supported": the whole batch is computed at once.
        """
        return None


def masked_mean(values, mask):
    """The mean of `values` over the entries where `mask > 0`, per row (0 for an empty row).

    `values`, `mask`: `[rows, columns]`; returns `[rows]`.
    """
    count = tf.reduce_sum(mask, axis=-1)
    total = tf.reduce_sum(tf.where(mask > 0, values, tf.zeros_like(values)), axis=-1)
    return tf.math.divide_no_nan(total, count)
