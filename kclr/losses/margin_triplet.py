"""Margin triplet loss, one of the SimCLR paper's comparison losses (Table 2, Table 4)."""

from __future__ import annotations

import tensorflow as tf

from kclr.losses.core import masked_logits, masked_mean
from kclr.losses.nt_logistic import MinedPairLoss, semi_hard_negatives
from kclr.registry import losses


def _per_sample(features, labels, margin, semi_hard, normalize):
    # Cosine similarities (temperature 1): [V*B, V*N].
    logits, positives, negatives, _ = masked_logits(
        features, labels, temperature=1.0, normalize=normalize
    )
    if semi_hard:
        negatives = semi_hard_negatives(logits, positives, negatives)
    positive_similarity = masked_mean(logits, positives)[:, None]  # [V*B, 1]
    hinge = tf.nn.relu(logits - positive_similarity + margin)  # [V*B, V*N]
    per_anchor = masked_mean(hinge, negatives)  # [V*B]
    batch = tf.shape(features)[0]
    return tf.reduce_mean(tf.reshape(per_anchor, [-1, batch]), axis=0)  # [B]


def margin_triplet(
    features, labels=None, margin: float = 1.0, semi_hard: bool = False, normalize=True
):
    """Margin triplet loss on cosine similarities, mean over anchors.

    Reference: Chen et al., ICML 2020 (https://arxiv.org/abs/2002.05709),
    Table 2: `max(u·v⁻ - u·v⁺ + m, 0)`.

    For each anchor, the hinge is averaged over its negatives, against the
    anchor's mean positive similarity (with 2 views and no labels this is the
    one positive pair). With `semi_hard=True` only negatives less similar than
    the positive are used (all negatives when there is none), as in the
    paper's Table 4. Candidates come from the global batch under `tf.distribute`.

    Args:
        features: `[batch, views, dim]`.
        labels: optional `[batch]` labels (positives = same label).
        margin: the margin `m`.
        semi_hard: semi-hard negative mining.
        normalize: L2-normalize first.

    Returns:
        Scalar float32 loss.

    Example:

    >>> import numpy as np, kclr
    >>> z = np.random.default_rng(0).normal(size=(4, 2, 8)).astype("float32")
    >>> float(kclr.losses.margin_triplet(z, margin=0.5)) >= 0
    True
    """
    return tf.reduce_mean(_per_sample(features, labels, margin, semi_hard, normalize))


@losses.register("margin_triplet", description="Margin triplet loss (SimCLR paper ablation)")
class MarginTriplet(MinedPairLoss):
    """Margin triplet loss as a Keras loss (see `margin_triplet` and `MinedPairLoss`).

    Args:
        margin: the margin `m`.
        semi_hard, normalize, reduction, name, dtype: as for `MinedPairLoss`.

    Example:

    >>> import kclr
    >>> loss = kclr.losses.MarginTriplet(margin=0.4, semi_hard=True)
    """

    def __init__(
        self,
        margin: float = 1.0,
        semi_hard: bool = False,
        normalize: bool = True,
        reduction="sum_over_batch_size",
        name: str = "margin_triplet",
        dtype=None,
    ):
        super().__init__(margin, semi_hard, normalize, reduction, name, dtype)

    SCALE = "margin"
    sample_loss = staticmethod(_per_sample)
