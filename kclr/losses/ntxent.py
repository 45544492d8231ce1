"""NT-Xent, SimCLR's loss: a function and a `keras.losses.Loss`."""

from __future__ import annotations

from kclr.losses.core import ContrastiveLoss, contrastive_loss
from kclr.registry import losses


def nt_xent(features, temperature: float = 0.1, normalize: bool = True):
    """Normalized temperature-scaled cross-entropy (NT-Xent), mean over anchors.

    Reference: Chen et al., "A Simple Framework for Contrastive Learning of
    Visual Representations", ICML 2020 (https://arxiv.org/abs/2002.05709).

    Each view of each sample is an anchor; its positives are the other views
    of the same sample and its denominator covers every other view of every
    sample in the (global) batch. With 2 views this is exactly the paper's loss.
    It is SupCon without labels (`kclr.losses.supcon(f, None, T, base_temperature=T)`).

    kclr reports the standard mean over the `2N` anchors. The official SimCLR
    code (`add_contrastive_loss`) returns the sum of the two per-view means,
    i.e. **2x this value**; multiply by 2 to compare with its loss curves.

    Inside a `tf.distribute` replica context, features are gathered from all
    replicas with a differentiable all-gather, so negatives come from the
    global batch; the mean is over the local anchors.

    Args:
        features: `[batch, views, dim]` projections (any number of views).
        temperature: softmax temperature (official flag default 0.1; CIFAR 0.5).
        normalize: L2-normalize first (official `hidden_norm=True`).

    Returns:
        Scalar float32 loss.

    Example:

    >>> import numpy as np, kclr
    >>> z = np.random.default_rng(0).normal(size=(4, 2, 8)).astype("float32")
    >>> float(kclr.losses.nt_xent(z, temperature=0.5)) > 0
    True
    """
    return contrastive_loss(features, None, temperature=temperature, normalize=normalize)


@losses.register("ntxent", description="NT-Xent (SimCLR) contrastive loss")
class NTXent(ContrastiveLoss):
    """NT-Xent (SimCLR) loss as a Keras loss.

    Reference: Chen et al., ICML 2020 (https://arxiv.org/abs/2002.05709).
    See `kclr.losses.nt_xent`; the value is half of the official SimCLR loss.

    Keras calls losses as `loss(y_true, y_pred)`: `y_true` is ignored (labels
    or `None`) and `y_pred` holds the features `[batch, views, dim]`. `call`
    returns per-sample losses; Keras's reduction averages them (and divides by
    the replica count under `tf.distribute`, as for any Keras loss).

    Args:
        temperature: softmax temperature.
        normalize: L2-normalize the features first.
        reduction, name, dtype: as for `keras.losses.Loss`.

    Example:

    >>> import numpy as np, kclr
    >>> z = np.random.default_rng(0).normal(size=(4, 2, 8)).astype("float32")
    >>> float(kclr.losses.NTXent(temperature=0.5)(None, z)) > 0
    True
    """

    def __init__(
        self,
        temperature: float = 0.1,
        normalize: bool = True,
        reduction="sum_over_batch_size",
        name: str = "ntxent",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = float(temperature)
        self.normalize = bool(normalize)

    def call(self, y_true, y_pred):
        return self.per_sample(y_true, y_pred)

    def per_sample(self, y_true, y_pred, candidates=None):
        del y_true  # NT-Xent is self-supervised
        return contrastive_loss(
            y_pred,
            None,
            temperature=self.temperature,
            normalize=self.normalize,
            reduction="none",
            candidates=candidates,
        )

    def get_config(self):
        config = super().get_config()
        config.update(temperature=self.temperature, normalize=self.normalize)
        return config
