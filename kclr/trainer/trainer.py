"""`ContrastiveTrainer`: SimCLR / SupCon pretraining as a `keras.Model`.

Batch preparation lives in `kclr.trainer.batches`, the chunked step in
`kclr.trainer.gradient_cache`. This module stays somewhat over 400 lines on purpose: about
a fifth of it is the class docstring, which keeps the trainer's whole contract (data,
distribution, metrics, precision, gradient caching) in one place users read.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kclr.losses.core import to_loss_dtype
from kclr.trainer.batches import ViewBatches
from kclr.trainer.metrics import (
    LastValue,
    contrastive_accuracy,
    contrastive_entropy,
    contrastive_logits,
)


def _num_replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


def _is_multi_worker(strategy) -> bool:
    from kclr.distribute import is_multi_worker

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and is_multi_worker(
        strategy
    )


def _head_dtype():
    """float32 under mixed precision (as the loss), else the global policy."""
    policy = keras.mixed_precision.global_policy()
    return "float32" if policy.compute_dtype in ("float16", "bfloat16") else None


def _unwrap_optimizer(optimizer):
    inner = getattr(optimizer, "inner_optimizer", None)
    return inner if inner is not None else optimizer


@keras.saving.register_keras_serializable(package="kclr")
class ContrastiveTrainer(ViewBatches, keras.Model):
    """Contrastive pretraining (SimCLR, SupCon) of an encoder and a projection head.

    Reference: Chen et al., "A Simple Framework for Contrastive Learning of
    Visual Representations", ICML 2020 (https://arxiv.org/abs/2002.05709);
    Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020.

    `train_step` takes a batch of `V` views, runs all views through the encoder
    and the head as one view-major batch (as the official code, so BatchNorm
    statistics cover every view), applies the compiled contrastive loss to the
    projections `[B, V, D]` and, when `num_classes` is set, trains a supervised
    head on `stop_gradient(hiddens[ft_proj_selector])` of every view (the
    official "linear evaluation while pretraining"). Its loss is added to the
    contrastive loss (it only reaches the supervised head's weights).

    Under `tf.distribute`, each replica computes the loss of its local anchors
    against the candidates of all replicas (global negatives), divides it by the
    number of replicas (Keras's loss convention), and gradients are SUM
    all-reduced: one step equals single-device training on the global batch
    (with synchronized BatchNorm in the models). When LARS excludes the
    supervised head from weight decay (the default), `weight_decay * l2_loss`
    of its kernel is added to the loss, as the official code does.

    Data: each element is a dict `{"views": [B, V, H, W, 3], "labels": [B]}`
    (labels optional), a tuple `(views, labels)`, or a views tensor; views are
    float in `[0, 1]` or uint8 in `0..255`. With a `device_augmenter`, raw images
    `[B, H, W, 3]` are accepted too and turned into `num_views` augmented views on
    the device.

    Device augmentation: `device_augmenter` (typically a recipe's photometric
    stage, `kclr.data.photometric_stage(...)`, fed by
    `kclr.data.pretraining_dataset(..., photometric="device")`) runs once per step
    on the whole local batch, in `_augment_on_device`. kclr layers then draw
    per-image parameters from a stateless seed made of `augment_seed` and the
    optimizer step, for the image's position in the global batch: the stream is
    reproducible, continues after a resume, and does not depend on the number of
    replicas (a replica draws for the global batch and keeps its own rows). They run
    in their static-shape form (XLA-compilable) and in float32 under mixed
    precision. Layers from elsewhere are called with `training=True` and their own
    randomness.

    Reported metrics: `loss` (contrastive, kclr's mean over anchors: half the
    official SimCLR value), `contrast_acc` and `contrast_entropy` (official
    definitions: view-0 anchors against global view-1 candidates),
    `learning_rate`, and `sup_loss` / `sup_acc` when `num_classes` is set.

    Mixed precision: set `keras.mixed_precision.set_global_policy(...)` before
    building the models; the loss and the logits are computed in float32, and
    with `"mixed_float16"` `compile` wraps the optimizer in a
    `keras.optimizers.LossScaleOptimizer`.

    Args:
        encoder: `keras.Model` mapping images `[B, H, W, 3]` to features `[B, F]`.
        projection_head: layer mapping features to the list of hiddens
            `[h, ..., projection]` (e.g. `kclr.models.ProjectionHead`), or to
            the projection alone.
        num_classes: if set, a supervised head `Dense(num_classes)` named
            `head_supervised` is trained on the stopped-gradient hiddens.
        ft_proj_selector: which hidden feeds the supervised head (0 = encoder
            output, -1 = projection).
        device_augmenter: optional layer applied to `[B*V, H, W, 3]` images on
            the device during training.
        num_views: views made from raw images when `device_augmenter` is set.
        augment_seed: seed of the device augmentation stream (random when `None`).
        gradient_cache_chunk_size: if set, each step is computed chunk by chunk
            with gradient caching (`kclr.trainer.gradient_cache`): chunks of this
            many images (all their views) go through the model, the loss still
            covers the whole batch. The step equals one step of a strategy with
            one replica per chunk and per-replica BatchNorm. `None`: off.
        name: model name.

    Example:

    ```python
    import kclr

    encoder = kclr.models.resnet18(cifar_stem=True)
    trainer = kclr.ContrastiveTrainer(encoder, kclr.models.ProjectionHead("v2"), num_classes=10)
    trainer.compile(optimizer=kclr.optimizers.LARS(0.3, weight_decay=1e-6),
                    loss=kclr.losses.NTXent(temperature=0.5))
    trainer.fit(kclr.data.pretraining_dataset("demo", image_size=32, global_batch_size=64),
                steps_per_epoch=10, epochs=2)
    ```
    """

    def __init__(
        self,
        encoder,
        projection_head,
        num_classes: int | None = None,
        ft_proj_selector: int = 0,
        device_augmenter=None,
        num_views: int = 2,
        augment_seed: int | None = None,
        gradient_cache_chunk_size: int | None = None,
        name: str = "contrastive_trainer",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if num_classes is not None and int(num_classes) < 1:
            raise ValueError(
                f"`num_classes` must be a positive integer or None; received {num_classes!r}."
            )
        if gradient_cache_chunk_size is not None and (
            isinstance(gradient_cache_chunk_size, bool)
            or not isinstance(gradient_cache_chunk_size, int)
            or gradient_cache_chunk_size < 1
        ):
            raise ValueError(
                "`gradient_cache_chunk_size` must be a positive integer (images per chunk) "
                f"or None (off); received {gradient_cache_chunk_size!r}."
            )
        self.gradient_cache_chunk_size = gradient_cache_chunk_size
        self.encoder = encoder
        self.projection_head = projection_head
        self.num_classes = None if num_classes is None else int(num_classes)
        self.ft_proj_selector = int(ft_proj_selector)
        self.device_augmenter = device_augmenter
        self.num_views = int(num_views)
        if augment_seed is None:
            augment_seed = int(np.random.SeedSequence().entropy % (2**31 - 1))
        self.augment_seed = int(augment_seed)
        self.supervised_head = None
        if self.num_classes is not None:
            self.supervised_head = keras.layers.Dense(
                self.num_classes,
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                name="head_supervised",
                dtype=_head_dtype(),
            )
        self.contrastive_loss = None
        self.memory_queue = None  # the compiled loss's `MemoryQueue`, if it has one
        self.supervised_loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, name="sup_loss"
        )
        self._image_shape = None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.acc_tracker = keras.metrics.Mean(name="contrast_acc")
        self.entropy_tracker = keras.metrics.Mean(name="contrast_entropy")
        self.lr_tracker = LastValue(name="learning_rate")
        self.sup_loss_tracker = keras.metrics.Mean(name="sup_loss")
        self.sup_acc_tracker = keras.metrics.SparseCategoricalAccuracy(name="sup_acc")

    # ----------------------------------------------------------------- compile
    def compile(self, optimizer="lars", loss="ntxent", jit_compile="auto", **kwargs):
        """Configures the trainer; components are resolved through `kclr.registry` only.

        Args:
            optimizer: a registered name (`"lars"`, `"sgd"`, `"adam"`, `"adamw"` or a
                plugin's), a spec `{"name": ..., "config": {...}}` (its `learning_rate`
                may itself be a schedule spec, e.g. `{"name": "warmup_cosine",
                "config": {...}}`, with the schedule's run arguments -- batch size,
                data size, epochs -- in its `config`, as no run supplies them here),
                Keras's serialized form, or an optimizer instance.
            loss: a registered name (`"ntxent"`, `"supcon"`, `"nt_logistic"`,
                `"margin_triplet"`), a spec, or a `keras.losses.Loss` instance taking
                `(labels, features)`.
            jit_compile: compile the step with XLA. `"auto"` (the default, as
                Keras) uses XLA when a GPU or TPU is present and not on CPU, where
                XLA measured several times slower for ResNets.
            **kwargs: passed to `keras.Model.compile` (`steps_per_execution`, ...).

        Example:

        ```python
        trainer.compile(
            optimizer={"name": "lars", "config": {"learning_rate": 0.3, "momentum": 0.9}},
            loss={"name": "ntxent", "config": {"temperature": 0.1}},
        )
        ```
        """
        from kclr import registry, spec

        if "metrics" in kwargs:
            raise ValueError(
                "ContrastiveTrainer reports its own metrics (loss, contrast_acc, "
                "contrast_entropy, learning_rate, sup_loss, sup_acc); received "
                f"metrics={kwargs['metrics']!r}. Remove the `metrics` argument."
            )
        self.contrastive_loss = spec.resolve(registry.losses, loss, "loss")
        optimizer = spec.build_optimizer(registry.optimizers, registry.schedules, optimizer)
        policy = getattr(self.encoder, "dtype_policy", None)
        if (
            policy is not None
            and policy.name == "mixed_float16"
            and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        ):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        self._adopt_memory_queue(getattr(self.contrastive_loss, "memory_queue", None))

    def _adopt_memory_queue(self, queue):
        """Tracks the loss's memory queue, so its state is in `weights` and checkpoints."""
        if queue is None or queue is self.memory_queue:
            return
        locked = self._tracker.locked
        self._tracker.unlock()  # the queue may arrive after the trainer was built
        self.memory_queue = queue
        if locked:
            self._tracker.lock()
        if self._image_shape is not None:  # built: fix the queue's feature size now
            self(tf.zeros((1, *self._image_shape)), training=False)
        elif getattr(self.encoder, "output", None) is not None:
            # A functional encoder: size the queue from the head's symbolic output, so
            # its variables exist before the first step (a checkpoint restores them).
            hiddens = self.projection_head(self.encoder.output)  # symbolic: builds the head
            projection = hiddens[-1] if isinstance(hiddens, (list, tuple)) else hiddens
            queue.build_for(projection)

    def get_compile_config(self):
        if self.contrastive_loss is None:
            return None
        return {
            "optimizer": keras.saving.serialize_keras_object(self.optimizer),
            "loss": keras.saving.serialize_keras_object(self.contrastive_loss),
            "jit_compile": bool(self.jit_compile),
        }

    def compile_from_config(self, config):
        optimizer = keras.saving.deserialize_keras_object(config["optimizer"])
        loss = keras.saving.deserialize_keras_object(config["loss"])
        self.compile(optimizer=optimizer, loss=loss, jit_compile=config.get("jit_compile", False))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        metrics = [self.loss_tracker, self.acc_tracker, self.entropy_tracker, self.lr_tracker]
        if self.supervised_head is not None:
            metrics += [self.sup_loss_tracker, self.sup_acc_tracker]
        return metrics

    # ----------------------------------------------------------------- forward
    def _forward(self, views, training):
        images, num_views, batch = self._views_to_batch(views, training)
        self._assert_equal_replica_batches(batch)
        if self._image_shape is None and images.shape[1:].is_fully_defined():
            self._image_shape = tuple(int(d) for d in images.shape[1:])
            self.built = True
        h = self.encoder(images, training=training)
        hiddens = self.projection_head(h, training=training)
        if not isinstance(hiddens, (list, tuple)):
            hiddens = [h, hiddens]
        z = to_loss_dtype(hiddens[-1])  # [V*B, D], float32 under mixed precision
        if self.memory_queue is not None:
            self.memory_queue.build_for(z)
        # [V*B, D] -> [V, B, D] -> [B, V, D]
        features = tf.transpose(tf.reshape(z, [num_views, batch, -1]), [1, 0, 2])
        logits_sup = None
        if self.supervised_head is not None:
            sup_input = tf.stop_gradient(to_loss_dtype(hiddens[self.ft_proj_selector]))
            logits_sup = self.supervised_head(sup_input)  # [V*B, classes]
        return features, logits_sup, num_views

    def call(self, inputs, training=False):
        """Returns the projections `[B, V, D]` of views (or `[B, D]` of images)."""
        views, _ = self._unpack(inputs)
        if views.shape.rank == 4 and self.device_augmenter is None:
            views = tf.convert_to_tensor(views)
            if views.dtype.is_integer:
                views = tf.image.convert_image_dtype(views, tf.float32)
            h = self.encoder(views, training=training)
            hiddens = self.projection_head(h, training=training)
            if not isinstance(hiddens, (list, tuple)):
                hiddens = [h, hiddens]
            if self.supervised_head is not None:
                self.supervised_head(to_loss_dtype(hiddens[self.ft_proj_selector]))
            if self._image_shape is None and views.shape[1:].is_fully_defined():
                self._image_shape = tuple(int(d) for d in views.shape[1:])
                self.built = True
            if self.memory_queue is not None:
                self.memory_queue.build_for(to_loss_dtype(hiddens[-1]))
            return to_loss_dtype(hiddens[-1])
        features, _, _ = self._forward(views, training)
        return features

    def _compute_losses(self, features, logits_sup, labels, num_views):
        """Returns (loss for gradients, contrastive loss, supervised loss)."""
        self._check_compiled()
        # Keras convention: under tf.distribute the reduced loss is already / replicas.
        contrastive = self.contrastive_loss(labels, features)
        total = contrastive
        sup = None
        if logits_sup is not None and labels is not None:
            sup_labels = tf.tile(tf.reshape(tf.cast(labels, tf.int32), [-1]), [num_views])
            sup = self.supervised_loss(sup_labels, logits_sup)
            total = total + sup
            total = total + tf.cast(self._supervised_weight_decay(), total.dtype)
        return total, contrastive, sup

    def _enqueue(self, features, labels):
        """Pushes the step's projections into the loss's memory queue (training only)."""
        if self.memory_queue is not None:
            self.memory_queue.enqueue(features, labels)

    def _check_compiled(self):
        if self.contrastive_loss is None:
            raise RuntimeError(
                "ContrastiveTrainer is not compiled. Call `trainer.compile(optimizer=..., "
                "loss=...)` first, e.g. `compile(optimizer='lars', loss='ntxent')`."
            )

    def _supervised_weight_decay(self):
        optimizer = _unwrap_optimizer(self.optimizer)
        weight_decay = getattr(optimizer, "lars_weight_decay", 0.0)
        kernel = self.supervised_head.kernel
        if not weight_decay or optimizer.use_weight_decay(kernel.path):
            return 0.0
        # Official: wd * l2_loss(kernel) added to the loss before / replicas.
        penalty = weight_decay * 0.5 * tf.reduce_sum(tf.square(kernel))
        return penalty / _num_replicas()

    def _update_metrics(
        self, features, logits_sup, labels, contrastive, sup, num_views, contrast=None
    ):
        replicas = _num_replicas()
        self.loss_tracker.update_state(contrastive * replicas)
        if contrast is None:
            temperature = getattr(self.contrastive_loss, "temperature", 1.0)
            normalize = getattr(self.contrastive_loss, "normalize", True)
            logits, positives = contrastive_logits(features, temperature, normalize=normalize)
            contrast = contrastive_accuracy(logits, positives), contrastive_entropy(logits)
        self.acc_tracker.update_state(contrast[0])  # (accuracy, entropy), e.g. blockwise
        self.entropy_tracker.update_state(contrast[1])
        if sup is not None:
            sup_labels = tf.tile(tf.reshape(tf.cast(labels, tf.int32), [-1]), [num_views])
            self.sup_loss_tracker.update_state(sup * replicas)
            self.sup_acc_tracker.update_state(sup_labels, logits_sup)

    def train_step(self, data):
        views, labels = self._unpack(data)
        if self.gradient_cache_chunk_size is not None:  # gradient caching, see its module
            from kclr.trainer.gradient_cache import gradient_cache_step

            self._check_compiled()
            features, logits_sup, contrastive, sup, num_views, contrast = gradient_cache_step(
                self, views, labels
            )
            self._enqueue(features, labels)
            self._update_metrics(
                features, logits_sup, labels, contrastive, sup, num_views, contrast
            )
            self.lr_tracker.update_state(self.optimizer.learning_rate)
            return self._logs()
        with tf.GradientTape() as tape:
            features, logits_sup, num_views = self._forward(views, training=True)
            total, contrastive, sup = self._compute_losses(features, logits_sup, labels, num_views)
            scaled = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        self._enqueue(features, labels)
        self._update_metrics(features, logits_sup, labels, contrastive, sup, num_views)
        self.lr_tracker.update_state(self.optimizer.learning_rate)
        return self._logs()

    def test_step(self, data):
        views, labels = self._unpack(data)
        features, logits_sup, num_views = self._forward(views, training=False)
        _, contrastive, sup = self._compute_losses(features, logits_sup, labels, num_views)
        self._update_metrics(features, logits_sup, labels, contrastive, sup, num_views)
        self.lr_tracker.update_state(self.optimizer.learning_rate)
        return self._logs()

    def _logs(self):
        logs = {m.name: m.result() for m in self.metrics}
        if _is_multi_worker(self.distribute_strategy):
            # Keras reduces multi-worker logs with `strategy.reduce("MEAN", v, axis=0)`,
            # which fails on scalars: give each value a leading axis of 1.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def fit(self, x=None, *args, **kwargs):
        self._check_dataset_batch(x)
        if isinstance(x, (tf.data.Dataset, tf.distribute.DistributedDataset)) and not args:
            kwargs.setdefault("shuffle", False)  # datasets shuffle themselves; no Keras warning
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self._check_dataset_batch(x)
        return super().evaluate(x, *args, **kwargs)

    # ----------------------------------------------------------- serialization
    def get_config(self):
        return {
            "name": self.name,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "projection_head": keras.saving.serialize_keras_object(self.projection_head),
            "num_classes": self.num_classes,
            "ft_proj_selector": self.ft_proj_selector,
            "device_augmenter": (
                None
                if self.device_augmenter is None
                else keras.saving.serialize_keras_object(self.device_augmenter)
            ),
            "num_views": self.num_views,
            "augment_seed": self.augment_seed,
            "gradient_cache_chunk_size": self.gradient_cache_chunk_size,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "projection_head", "device_augmenter"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def get_build_config(self):
        if self._image_shape is None:
            return None
        return {"image_shape": list(self._image_shape)}

    def build_from_config(self, config):
        if config and config.get("image_shape"):
            shape = tuple(config["image_shape"])
            self(tf.zeros((1, *shape)), training=False)
            self.built = True
