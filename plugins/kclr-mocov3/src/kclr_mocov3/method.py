"""`MoCoV3`: the MoCo v3 training method (facebookresearch/moco-v3, `moco/builder.py`).

Reference: Chen, Xie, He, "An Empirical Study of Training Self-Supervised Vision
Transformers", ICCV 2021 (https://arxiv.org/abs/2104.02057).

Parts. The run's encoder and projection head are the base encoder and its projector
(the presets use the authors' MLP, `moco_v3_mlp`); the method adds a momentum encoder
and a momentum projector, copies of both that start equal and are never trained by
gradients, and a predictor MLP on the base branch.

A step (two views `x1`, `x2`, as `MoCo.forward`):

    q1, q2 = predictor(projector(base(x1))), predictor(projector(base(x2)))
    m      = 1 - 0.5 * (1 + cos(pi * step / total_steps)) * (1 - momentum)   # moco_m_cos
    θ_m    = m * θ_m + (1 - m) * θ_b          # before the keys, every trainable weight
    k1, k2 = momentum_projector(momentum(x1)), momentum_projector(momentum(x2))
    loss   = ctr(q1, k2) + ctr(q2, k1)        # keys gathered from every replica

Each view goes through each branch on its own, as the authors' `MoCo.forward`, so
BatchNorm normalises with the statistics of one view (of the global batch with
`sync_bn`) and updates its moving statistics once per view. The momentum branch runs in training mode: its BatchNorm normalises with
batch statistics and updates its own moving statistics, which the EMA does not average
(buffers, as the authors'). Frozen weights (`stop_grad_conv1`) are left out of the EMA:
they are equal in both branches and stay so.

Gradient caching is refused: the momentum encoder would see each chunk's BatchNorm
statistics instead of the batch's, and its EMA would run once per chunk.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kclr.methods import Method, MethodError, freeze_variables
from kclr.trainer.batches import assert_equal_replica_batches
from kclr.trainer.metrics import LastValue, contrast_metrics
from kclr.trainer.step import ModelParts, StepOutputs, forward, supervised_labels
from kclr_mocov3.loss import symmetric_loss
from kclr_mocov3.mlp import MoCoMLP
from kclr_mocov3.schedule import moco_momentum


def _copy(layer, scope: str):
    """A copy of `layer` (same config and weights) whose variables live under `scope`/."""
    with keras.name_scope(scope):
        copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    return copy


@keras.saving.register_keras_serializable(package="kclr_mocov3")
class MoCoV3(Method):
    """MoCo v3: base and momentum encoders, a predictor, the symmetric contrastive loss.

    Args:
        temperature: `T` of the loss (1.0 for ResNet-50, 0.2 for ViT: `main_moco.py`
            defaults and the README's ViT commands).
        momentum: the authors' `moco_m`, the momentum at step 0 (0.99).
        momentum_cosine: `--moco-m-cos`: the momentum rises from `momentum` to 1 on a
            half-cycle cosine over the run (per iteration).
        total_steps: the run's length in optimizer steps (a run supplies it).
        predictor_hidden: hidden width of the predictor (the authors' `mlp_dim`, 4096).
        predictor_last_bn: a BatchNorm without affine after the predictor (ViT: True,
            ResNet: False).
        sync_bn: synchronised BatchNorm in the predictor (the authors' SyncBatchNorm).
        stop_grad_conv1: freeze the encoder's patch projection (`--stop-grad-conv1`,
            ViTs): its first convolution is made non-trainable. An encoder without a
            convolution is refused.
        name: layer name.
    """

    reads = {
        "encoder": "the base encoder (trained and exported); its copy is the momentum encoder",
        "projection_head": "the projector; its copy is the momentum projector",
        "optimizer": "the optimizer of the base encoder, projector and predictor",
        "schedule": "the optimizer's learning rate",
        "augmentation": "the two views of each image",
    }
    ignores = {
        "loss": (
            "MoCo v3 computes its own loss ctr(q1, k2) + ctr(q2, k1) with "
            "`method.config.temperature`"
        ),
    }
    supports_gradient_cache = False
    gradient_cache_refusal = (
        "its momentum encoder would see each chunk's BatchNorm statistics and update once "
        "per chunk, so a cached step would not be a MoCo v3 step"
    )
    uses_loss = False
    run_arguments = ("total_steps",)

    def __init__(
        self,
        temperature: float = 1.0,
        momentum: float = 0.99,
        momentum_cosine: bool = True,
        total_steps: int | None = None,
        predictor_hidden: int = 4096,
        predictor_last_bn: bool = False,
        sync_bn: bool = False,
        stop_grad_conv1: bool = False,
        name: str = "moco_v3",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= float(momentum) <= 1.0:
            raise MethodError(f"`momentum` must be in [0, 1]; received {momentum!r}.")
        if momentum_cosine and (total_steps is None or int(total_steps) < 1):
            raise MethodError(
                "MoCo v3 with `momentum_cosine` needs the run's length: `total_steps` "
                f"(a positive integer); received {total_steps!r}. `kclr fit` supplies it; "
                "in Python pass `method={'name': 'moco_v3', 'config': {'total_steps': N}}`."
            )
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.momentum_cosine = bool(momentum_cosine)
        self.total_steps = None if total_steps is None else int(total_steps)
        self.predictor_hidden = int(predictor_hidden)
        self.predictor_last_bn = bool(predictor_last_bn)
        self.sync_bn = bool(sync_bn)
        self.stop_grad_conv1 = bool(stop_grad_conv1)
        self.momentum_tracker = LastValue(name="moco_momentum")
        self.momentum_encoder = None
        self.momentum_projector = None
        self.predictor = None

    # ------------------------------------------------------------------ set-up
    def attach(self, encoder, projection_head) -> None:
        """Builds the momentum copies (equal to the base) and the predictor."""
        if getattr(encoder, "output", None) is None:
            raise MethodError(
                "MoCo v3 copies the encoder into its momentum encoder and needs a built, "
                f"functional encoder (with `.output`); received {type(encoder).__name__}."
            )
        if self.stop_grad_conv1:
            _freeze_patch_projection(encoder)
        projection = projection_head(encoder.output)  # symbolic: builds the head
        if isinstance(projection, (list, tuple)):
            projection = projection[-1]
        self.momentum_encoder = _copy(encoder, "momentum")
        self.momentum_projector = _copy(projection_head, "momentum")
        if not self.momentum_projector.built:
            self.momentum_projector(self.momentum_encoder.output)
        self.momentum_encoder.set_weights(encoder.get_weights())
        self.momentum_projector.set_weights(projection_head.get_weights())
        self.predictor = MoCoMLP(
            2, self.predictor_hidden, None, self.predictor_last_bn, self.sync_bn,
            name="predictor",
        )  # fmt: skip
        self.predictor.build(projection.shape)
        # The EMA pairs: every trainable weight of the base branch and its copy.
        base = list(encoder.weights) + list(projection_head.weights)
        copies = list(self.momentum_encoder.weights) + list(self.momentum_projector.weights)
        if [tuple(v.shape) for v in base] != [tuple(v.shape) for v in copies]:
            raise MethodError("The momentum copy of the encoder does not match the encoder.")
        self._pairs = _Pairs([(b, m) for b, m in zip(base, copies, strict=True) if b.trainable])
        freeze_variables([self.momentum_encoder, self.momentum_projector])

    # ------------------------------------------------------------------- a step
    def momentum_at(self, step):
        """The momentum `m` at optimizer step `step` (`adjust_moco_momentum`)."""
        progress = 0.0
        if self.momentum_cosine:
            progress = tf.cast(step, tf.float32) / float(self.total_steps)
        return moco_momentum(progress, self.momentum, self.momentum_cosine)

    def update_momentum_encoder(self, m) -> None:
        """`θ_m <- m θ_m + (1 - m) θ_b` for every pair (`_update_momentum_encoder`)."""
        context = tf.distribute.get_replica_context()
        if context is None or tf.distribute.get_strategy().num_replicas_in_sync == 1:
            ema_update(self._pairs, m)
            return

        def update(strategy, m):  # cross-replica: each device's copy from its base copy
            for base, copy in self._pairs:
                strategy.extended.update(
                    copy.value,
                    lambda c, b, mm: c.assign(mm * c + (1.0 - mm) * b),
                    args=(base.value, m),
                )

        context.merge_call(update, args=(m,))

    def _queries_and_keys(self, context, images, num_views, training):
        """The base forward with the predictor (queries) and the momentum forward (keys),
        each view on its own as `MoCo.forward` (BatchNorm statistics of one view)."""
        x1, x2 = tf.split(images, 2)
        base1, base2 = (forward(context.parts, x, 1, training=training) for x in (x1, x2))
        q1 = self.predictor(base1.hiddens[-1], training=training)  # [N, D]
        q2 = self.predictor(base2.hiddens[-1], training=training)
        if training:
            m = self.momentum_at(context.optimizer.iterations)
            self.update_momentum_encoder(m)
            self.momentum_tracker.update_state(m)
        momentum_parts = ModelParts(self.momentum_encoder, self.momentum_projector)
        k1, k2 = (
            tf.stop_gradient(forward(momentum_parts, x, 1, training=training).hiddens[-1])
            for x in (x1, x2)
        )
        logits = None
        if base1.logits is not None:
            logits = tf.concat([base1.logits, base2.logits], axis=0)  # view-major rows
        return logits, (q1, q2, k1, k2)

    def _objective(self, context, logits, qk, labels, num_views):
        q1, q2, k1, k2 = qk
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        contrastive = symmetric_loss(q1, q2, k1, k2, self.temperature) / replicas
        total, sup = contrastive, None
        if logits is not None and labels is not None:
            sup = context.supervised_loss(supervised_labels(labels, num_views), logits)
            total = total + sup + tf.cast(context.penalty(), total.dtype)
        # contrast_acc / contrast_entropy of view-1 queries against the global view-2 keys.
        pairs = tf.stack([tf.cast(q1, tf.float32), tf.cast(k2, tf.float32)], axis=1)
        contrast = contrast_metrics(pairs, self.temperature, True)
        return total, StepOutputs(pairs, logits, contrastive, sup, num_views, contrast)

    def step(self, context, views, labels):
        """One MoCo v3 step: gradients of the base branch and predictor, nothing applied
        (the momentum encoder is updated before its keys, as the authors')."""
        with tf.GradientTape() as tape:
            images, num_views, batch = context.batches.to_images(
                views, training=True, step=context.optimizer.iterations
            )
            assert_equal_replica_batches(batch)
            _check_two_views(num_views)
            logits, qk = self._queries_and_keys(context, images, num_views, training=True)
            total, outputs = self._objective(context, logits, qk, labels, num_views)
            scaled = context.optimizer.scale_loss(total)
        return tape.gradient(scaled, context.variables()), outputs

    def evaluate_step(self, context, views, labels):
        images, num_views, batch = context.batches.to_images(views, training=False)
        assert_equal_replica_batches(batch)
        _check_two_views(num_views)
        logits, qk = self._queries_and_keys(context, images, num_views, training=False)
        return self._objective(context, logits, qk, labels, num_views)[1]

    # ------------------------------------------------------------------ metrics
    @property
    def metrics_list(self):
        return [self.momentum_tracker]

    def export_encoder(self, encoder):
        """The base encoder, as the authors evaluate it (`main_lincls.py` loads `base_encoder`)."""
        return encoder

    def get_config(self):
        return {
            "name": self.name,
            "temperature": self.temperature,
            "momentum": self.momentum,
            "momentum_cosine": self.momentum_cosine,
            "total_steps": self.total_steps,
            "predictor_hidden": self.predictor_hidden,
            "predictor_last_bn": self.predictor_last_bn,
            "sync_bn": self.sync_bn,
            "stop_grad_conv1": self.stop_grad_conv1,
        }


def _check_two_views(num_views) -> None:
    if num_views != 2:
        raise MethodError(
            f"MoCo v3 trains on two views per image; received {num_views}. Set `data.views=2`."
        )


def ema_update(pairs, m) -> None:
    """`copy <- m * copy + (1 - m) * base` for each `(base, copy)` variable pair."""
    for base, copy in pairs:
        copy.assign(m * copy.value + (1.0 - m) * base.value)


class _Pairs:
    """The EMA's `(base, copy)` variable pairs, kept out of Keras's tracking (the
    variables belong to the encoders, not to the method)."""

    def __init__(self, pairs):
        self.pairs = list(pairs)

    def __iter__(self):
        return iter(self.pairs)

    def __len__(self):
        return len(self.pairs)


def _freeze_patch_projection(encoder) -> list:
    """`--stop-grad-conv1`: the encoder's first convolution (a ViT's patch projection:
    the first 4-D kernel) keeps its random initial weights, kernel and bias; returns them."""
    for variable in encoder.weights:
        if len(variable.shape) == 4:
            prefix = variable.path.rpartition("/")[0] + "/"
            frozen = [v for v in encoder.weights if v.path.startswith(prefix)]
            for v in frozen:
                v.trainable = False
            return frozen
    raise MethodError(
        "`stop_grad_conv1` freezes the patch projection (the first convolution) of the "
        f"encoder, but {encoder.name!r} has no convolution kernel. Set `method.config.stop_grad_conv1=false`."
    )
