"""Supervised contrastive loss (SupCon): a function and a `keras.losses.Loss`."""

from __future__ import annotations

from kclr.losses.core import ContrastiveLoss, contrastive_loss
from kclr.registry import losses


def supcon(
    features,
    labels=None,
    temperature: float = 0.1,
    base_temperature: float = 0.07,
    contrast_mode: str = "all",
    summation: str = "outside",
    normalize: bool = True,
):
    """Supervised contrastive loss, mean over anchors.

    Reference: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020
    (https://arxiv.org/abs/2004.11362). Follows HobbitLong/SupContrast `SupConLoss`.

    Positives of an anchor are all other views of samples with the same label.
    Without labels this is SimCLR's NT-Xent, multiplied by
    `temperature / base_temperature`. The value scales with
    `temperature / base_temperature`: with the defaults (0.1 / 0.07) it is 1.43x
    the plain mean of -log-probabilities. Google's TF SupCon with
    `scale_by_temperature=True` equals `base_temperature=1.0`.

    Unlike HobbitLong's code, the features are L2-normalized here by default
    (`normalize=True`; the PyTorch model normalizes before calling the loss).
    Inside a `tf.distribute` replica context, candidates are gathered from all
    replicas (global negatives) and the mean is over the local anchors.

    Args:
        features: `[batch, views, dim]` features.
        labels: optional `[batch]` integer labels; `None` gives SimCLR.
        temperature: softmax temperature.
        base_temperature: reference temperature; the loss is scaled by
            `temperature / base_temperature`.
        contrast_mode: `"all"` (every view is an anchor) or `"one"` (view 0 only).
        summation: `"outside"` (L_out, the paper's loss) or `"inside"` (L_in).
        normalize: L2-normalize the features first.

    Returns:
        Scalar float32 loss. Anchors without positives contribute 0 (no NaN).

    Example:

    >>> import numpy as np, kclr
    >>> f = np.random.default_rng(0).normal(size=(4, 2, 8)).astype("float32")
    >>> float(kclr.losses.supcon(f, labels=[0, 1, 0, 1])) > 0
    True
    """
    return contrastive_loss(
        features,
        labels,
        temperature=temperature,
        base_temperature=base_temperature,
        contrast_mode=contrast_mode,
        summation=summation,
        normalize=normalize,
    )


@losses.register("supcon", description="Supervised contrastive loss (SupCon, L_out or L_in)")
class SupCon(ContrastiveLoss):
    """Supervised contrastive loss (SupCon) as a Keras loss.

    Reference: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020
    (https://arxiv.org/abs/2004.11362). See `kclr.losses.supcon` for the maths.

    Keras calls losses as `loss(y_true, y_pred)`: here `y_true` are the integer
    labels `[batch]` (or `None` for SimCLR) and `y_pred` the features
    `[batch, views, dim]`. `call` returns the per-sample loss (mean over the
    sample's anchor views), so Keras's reduction gives the mean over anchors
    and, under `tf.distribute`, divides it by the number of replicas as for any
    Keras loss.

    Args:
        temperature: softmax temperature.
        base_temperature: the loss is scaled by `temperature / base_temperature`.
        contrast_mode: `"all"` or `"one"`.
        summation: `"outside"` (L_out) or `"inside"` (L_in).
        normalize: L2-normalize the features first.
        queue_size: if set, a `kclr.losses.MemoryQueue` of this many past
            projections (with labels) is added to the candidates: the SupCon
            paper's "MoCo trick" (without the momentum encoder). The training
            method (`kclr.methods.SimCLR`) owns the queue: it creates it as
            `memory_queue` of this loss when the trainer is compiled, keeps its
            variables with the trainer's weights and fills it after every training
            step from all replicas. Queue entries with the anchor's label are
            positives; all filled entries are in the denominator.
        reduction, name, dtype: as for `keras.losses.Loss`.

    Example:

    >>> import numpy as np, kclr
    >>> loss = kclr.losses.SupCon(temperature=0.1)
    >>> f = np.random.default_rng(0).normal(size=(4, 2, 8)).astype("float32")
    >>> float(loss(np.array([0, 1, 0, 1]), f)) > 0
    True
    """

    def __init__(
        self,
        temperature: float = 0.1,
        base_temperature: float = 0.07,
        contrast_mode: str = "all",
        summation: str = "outside",
        normalize: bool = True,
        queue_size: int | None = None,
        reduction="sum_over_batch_size",
        name: str = "supcon",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.queue_size = queue_size
        self.memory_queue = None  # the method's queue (`kclr.methods.SimCLR.bind`)
        if contrast_mode not in ("all", "one"):
            raise ValueError(f"`contrast_mode` must be 'all' or 'one'; received {contrast_mode!r}.")
        if summation not in ("outside", "inside"):
            raise ValueError(
                f"`summation` must be 'outside' (L_out) or 'inside' (L_in); received {summation!r}."
            )
        self.temperature = float(temperature)
        self.base_temperature = float(base_temperature)
        self.contrast_mode = contrast_mode
        self.summation = summation
        self.normalize = bool(normalize)

    def call(self, y_true, y_pred):
        return self.per_sample(y_true, y_pred)

    def per_sample(self, y_true, y_pred, candidates=None):
        return contrastive_loss(
            y_pred,
            self.labels_or_none(y_true),
            temperature=self.temperature,
            base_temperature=self.base_temperature,
            contrast_mode=self.contrast_mode,
            summation=self.summation,
            normalize=self.normalize,
            reduction="none",
            queue=self._queue_candidates(),
            candidates=candidates,
        )

    def _queue_candidates(self):
        queue = self.memory_queue
        return None if queue is None or not queue.built else queue.candidates()

    def get_config(self):
        config = super().get_config()
        config.update(
            temperature=self.temperature,
            base_temperature=self.base_temperature,
            contrast_mode=self.contrast_mode,
            summation=self.summation,
            normalize=self.normalize,
            queue_size=self.queue_size,
        )
        return config
