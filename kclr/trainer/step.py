"""The parts of a training step: the forward, the plain step, and the contract of a step.

A step kind (the plain step here, the gradient-cached step in
`kclr.trainer.gradient_cache`) is a function with the signature of `StepFn`: it receives
the batch and the parts of the model it needs (`StepContext`, no trainer) and returns
`(gradients, outputs)` without applying anything. A training method (`kclr.methods`)
chooses its step; `ContrastiveTrainer.train_step` calls it once, applies the gradients,
lets the method work after the update (the memory queue push of `simclr`, the EMA of a
momentum encoder) and updates the metrics and the learning rate.

Every step kind runs the model through `forward`, the one definition of
`encoder -> projection head -> (features, projections, supervised logits)`, which
`ContrastiveTrainer.call` uses too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import tensorflow as tf

from kclr.losses.core import to_loss_dtype
from kclr.trainer.batches import ViewBatches, assert_equal_replica_batches


@dataclass(frozen=True)
class ModelParts:
    """The layers a forward runs and the state it sizes.

    Attributes:
        encoder: maps images `[N, H, W, C]` to features `[N, F]`.
        projection_head: maps features to hiddens `[h, ..., projection]` (or the projection).
        supervised_head: optional `Dense(num_classes)` on the stopped-gradient hidden
            `ft_proj_selector`.
        ft_proj_selector: which hidden feeds the supervised head.
        memory_queue: the method's memory queue, sized from the first projections.
    """

    encoder: Any
    projection_head: Any
    supervised_head: Any = None
    ft_proj_selector: int = 0
    memory_queue: Any = None


class Forward(NamedTuple):
    """What `forward` returns for view-major images `[V*N, H, W, C]`.

    Attributes:
        hiddens: the projection head's hiddens, `hiddens[0]` the encoder's features
            `[V*N, F]`, `hiddens[-1]` the projections `[V*N, D]` (compute dtype).
        projections: the projections `[N, V, D]` in the loss dtype (float32 under mixed
            precision), the contrastive loss's input.
        logits: the supervised head's logits `[V*N, classes]`, or `None`.
    """

    hiddens: list
    projections: tf.Tensor
    logits: tf.Tensor | None


def forward(parts: ModelParts, images, num_views: int, training) -> Forward:
    """`encoder -> projection head -> (features, projections, logits)` on view-major images.

    Args:
        parts: the model's layers.
        images: view-major images `[V*N, H, W, C]` (view `v` of sample `i` at row `v*N + i`).
        num_views: `V`.
        training: passed to the encoder and the head.
    """
    h = parts.encoder(images, training=training)
    hiddens = parts.projection_head(h, training=training)
    if not isinstance(hiddens, (list, tuple)):
        hiddens = [h, hiddens]
    z = to_loss_dtype(hiddens[-1])  # [V*N, D], float32 under mixed precision
    if parts.memory_queue is not None:
        parts.memory_queue.build_for(z)
    # [V*N, D] -> [V, N, D] -> [N, V, D]
    projections = tf.transpose(tf.reshape(z, [num_views, -1, tf.shape(z)[-1]]), [1, 0, 2])
    logits = None
    if parts.supervised_head is not None:
        sup_input = tf.stop_gradient(to_loss_dtype(hiddens[parts.ft_proj_selector]))
        logits = parts.supervised_head(sup_input)
    return Forward(list(hiddens), projections, logits)


def supervised_labels(labels, num_views: int):
    """Labels `[N]` -> the labels `[V*N]` of the view-major rows (the supervised head's)."""
    return tf.tile(tf.reshape(tf.cast(labels, tf.int32), [-1]), [num_views])


def supervised_weight_decay(optimizer, kernel, replicas: int):
    """The official LARS penalty `wd * l2_loss(kernel) / replicas` on the supervised kernel
    when the optimizer excludes it from weight decay; `0.0` otherwise."""
    inner = getattr(optimizer, "inner_optimizer", None)
    optimizer = inner if inner is not None else optimizer
    weight_decay = getattr(optimizer, "lars_weight_decay", 0.0)
    if not weight_decay or optimizer.use_weight_decay(kernel.path):
        return 0.0
    return weight_decay * 0.5 * tf.reduce_sum(tf.square(kernel)) / replicas


@dataclass(frozen=True)
class StepContext:
    """Everything a step kind may use, passed explicitly.

    Attributes:
        parts: the model's layers (`ModelParts`).
        batches: turns a batch's views into view-major images (`ViewBatches`).
        contrastive_loss: the compiled loss, called as `loss(labels, projections [B, V, D])`.
        supervised_loss: the supervised head's loss, `loss(labels [V*B], logits)`.
        optimizer: read only: `scale_loss` and `iterations` (the augmentation seed's step).
        variables: returns the trainable variables, in the order of the returned
            gradients; called after the first forward (layers may build lazily).
        replicas: replicas in sync (the weight-decay penalty is divided by it).
        chunk_size: images per chunk of the gradient-cached step (`None` for the plain one).
    """

    parts: ModelParts
    batches: ViewBatches
    contrastive_loss: Any
    supervised_loss: Any
    optimizer: Any
    variables: Callable[[], list]
    replicas: int = 1
    chunk_size: int | None = None

    def penalty(self):
        """The supervised kernel's weight-decay penalty (0.0 when not applicable)."""
        head = self.parts.supervised_head
        return supervised_weight_decay(self.optimizer, head.kernel, self.replicas)


class StepOutputs(NamedTuple):
    """What a step reports besides its gradients (for the queue and the metrics).

    Attributes:
        projections: `[B, V, D]` projections of the batch (loss dtype).
        logits: view-major supervised logits `[V*B, classes]`, or `None`.
        contrastive: the contrastive loss (Keras convention: `/ replicas`).
        supervised: the supervised loss, or `None` (no head or no labels).
        num_views: `V`.
        contrast: `(contrast_acc, contrast_entropy)` when the step computed them
            (e.g. a block at a time), else `None` and the trainer computes them.
    """

    projections: tf.Tensor
    logits: tf.Tensor | None
    contrastive: tf.Tensor
    supervised: tf.Tensor | None
    num_views: int
    contrast: tuple | None = None


class StepFn(Protocol):
    """A step kind: the gradients of one batch, nothing applied.

    Args:
        context: the parts of the model and the losses (`StepContext`).
        views: the batch's views `[B, V, H, W, C]` (or raw images `[B, H, W, C]` with a
            device augmenter).
        labels: `[B]` labels or `None`.

    Returns:
        `(gradients, outputs)`: one gradient per `context.variables()` (of the scaled loss,
        `optimizer.scale_loss`; `None` where a variable is not reached) and `StepOutputs`.
    """

    def __call__(self, context: StepContext, views, labels) -> tuple[list, StepOutputs]: ...


def losses(context: StepContext, outputs: Forward, labels, num_views: int):
    """Returns (loss for gradients, contrastive loss, supervised loss or `None`)."""
    # Keras convention: under tf.distribute the reduced loss is already / replicas.
    contrastive = context.contrastive_loss(labels, outputs.projections)
    total, sup = contrastive, None
    if outputs.logits is not None and labels is not None:
        sup = context.supervised_loss(supervised_labels(labels, num_views), outputs.logits)
        total = total + sup + tf.cast(context.penalty(), total.dtype)
    return total, contrastive, sup


def plain_step(context: StepContext, views, labels) -> tuple[list, StepOutputs]:
    """The whole batch through the model under one tape (`StepFn`)."""
    with tf.GradientTape() as tape:
        images, num_views, batch = context.batches.to_images(
            views, training=True, step=context.optimizer.iterations
        )
        assert_equal_replica_batches(batch)
        outputs = forward(context.parts, images, num_views, training=True)
        total, contrastive, sup = losses(context, outputs, labels, num_views)
        scaled = context.optimizer.scale_loss(total)
    gradients = tape.gradient(scaled, context.variables())
    return gradients, StepOutputs(outputs.projections, outputs.logits, contrastive, sup, num_views)
