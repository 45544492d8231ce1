"""NT-Logistic, one of the SimCLR paper's comparison losses (Table 2, Table 4)."""

from __future__ import annotations

import tensorflow as tf

from kclr.losses.core import ContrastiveLoss, masked_logits, masked_mean
from kclr.registry import losses


def semi_hard_negatives(logits, positives, negatives):
    """Negatives less similar than the anchor's mean positive; all if none is.

    `logits`, `positives`, `negatives`: `[A*B, V*N]`. Returns the `[A*B, V*N]`
    mask of semi-hard negatives (SimCLR paper, Table 4 "sh").
    """
    positive_logit = masked_mean(logits, positives)[:, None]  # [A*B, 1]
    semi_hard = negatives * tf.cast(logits < positive_logit, negatives.dtype)
    has_any = tf.reduce_sum(semi_hard, axis=-1, keepdims=True) > 0
    return tf.where(has_any, semi_hard, negatives)


class MinedPairLoss(ContrastiveLoss):
    """Base of the paper's pairwise comparison losses (NT-Logistic, margin triplet) as
    Keras losses.

    Reference: Chen et al., ICML 2020 (https://arxiv.org/abs/2002.05709), Table 2.
    `y_true`: optional labels; `y_pred`: features `[batch, views, dim]`. One scale
    argument, named by `SCALE` (the temperature or the margin); `call` hands it, with the
    arguments below, to `sample_loss`, the loss's per-sample function
    `(features, labels, scale, semi_hard, normalize)`.

    Args:
        semi_hard: semi-hard negative mining.
        normalize: L2-normalize the features first.
        reduction, name, dtype: as for `keras.losses.Loss`.
    """

    SCALE = "temperature"

    def __init__(self, scale, semi_hard, normalize, reduction, name, dtype):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        setattr(self, self.SCALE, float(scale))
        self.semi_hard = bool(semi_hard)
        self.normalize = bool(normalize)

    @staticmethod
    def sample_loss(features, labels, scale, semi_hard, normalize):
        """Per-sample losses `[B]`; each loss names its own function."""
        raise NotImplementedError

    def call(self, y_true, y_pred):
        scale = getattr(self, self.SCALE)
        labels = self.labels_or_none(y_true)
        return self.sample_loss(y_pred, labels, scale, self.semi_hard, self.normalize)

    def get_config(self):
        config = super().get_config()
        config.update({self.SCALE: getattr(self, self.SCALE)})
        config.update(semi_hard=self.semi_hard, normalize=self.normalize)
        return config


def nt_logistic(
    features, labels=None, temperature: float = 0.1, semi_hard: bool = False, normalize=True
):
    """Normalized temperature-scaled logistic loss (NT-Logistic), mean over anchors.

    Reference: Chen et al., ICML 2020 (https://arxiv.org/abs/2002.05709),
    Table 2: `-log σ(u·v⁺/τ) - log σ(-u·v⁻/τ)`.

    For each anchor: the mean over its positives of `-log σ(s/τ)` plus the mean
    over its negatives of `-log σ(-s/τ)` (kclr averages over negatives so the
    two terms have equal weight; the paper's table shows one pair). With
    `semi_hard=True`, only negatives less similar than the positive are used
    (all negatives when there is none), as in the paper's Table 4.
    Candidates come from the global batch under `tf.distribute`.

    Args:
        features: `[batch, views, dim]`.
        labels: optional `[batch]` labels (positives = same label).
        temperature: temperature τ.
        semi_hard: semi-hard negative mining.
        normalize: L2-normalize first.

    Returns:
        Scalar float32 loss.

    Example:

    >>> import numpy as np, kclr
    >>> z = np.random.default_rng(0).normal(size=(4, 2, 8)).astype("float32")
    >>> float(kclr.losses.nt_logistic(z, temperature=0.5)) > 0
    True
    """
    return tf.reduce_mean(_per_sample(features, labels, temperature, semi_hard, normalize))


def _per_sample(features, labels, temperature, semi_hard, normalize):
    logits, positives, negatives, _ = masked_logits(
        features, labels, temperature, normalize=normalize
    )  # [V*B, V*N]
    if semi_hard:
        negatives = semi_hard_negatives(logits, positives, negatives)
    positive_term = masked_mean(tf.nn.softplus(-logits), positives)  # -log σ(s)
    negative_term = masked_mean(tf.nn.softplus(logits), negatives)  # -log σ(-s)
    per_anchor = positive_term + negative_term  # [V*B]
    batch = tf.shape(features)[0]
    return tf.reduce_mean(tf.reshape(per_anchor, [-1, batch]), axis=0)  # [B]


@losses.register("nt_logistic", description="NT-Logistic loss (SimCLR paper ablation)")
class NTLogistic(MinedPairLoss):
    """NT-Logistic loss as a Keras loss (see `nt_logistic` and `MinedPairLoss`).

    Args:
        temperature: temperature τ.
        semi_hard, normalize, reduction, name, dtype: as for `MinedPairLoss`.

    Example:

    >>> import kclr
    >>> loss = kclr.losses.NTLogistic(temperature=0.2, semi_hard=True)
    """

    def __init__(
        self,
        temperature: float = 0.1,
        semi_hard: bool = False,
        normalize: bool = True,
        reduction="sum_over_batch_size",
        name: str = "nt_logistic",
        dtype=None,
    ):
        super().__init__(temperature, semi_hard, normalize, reduction, name, dtype)

    sample_loss = staticmethod(_per_sample)
