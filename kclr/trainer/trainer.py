"""`ContrastiveTrainer`: contrastive pretraining by a training method, as a `keras.Model`.

The trainer is assembled from parts: batch preparation (`kclr.trainer.batches`), the
forward and the step contract (`kclr.trainer.step`), and a training method
(`kclr.methods`: the built-in `simclr` for SimCLR and SupCon, plugins for others).
`train_step` asks the method for the gradients of the batch, applies them, lets the
method do its work after the update (EMA, queue push) and updates the metrics.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kclr.data.teardown import closes_promptly
from kclr.models.heads import SupervisedHead
from kclr.trainer import batches as view_batches
from kclr.trainer.metrics import LastValue, contrast_metrics
from kclr.trainer.step import ModelParts, StepContext, forward, supervised_labels


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


@keras.saving.register_keras_serializable(package="kclr")
class ContrastiveTrainer(keras.Model):
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
    on the whole local batch (`kclr.trainer.batches.ViewBatches.augment`). kclr layers then draw
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
    `learning_rate`, `sup_loss` / `sup_acc` when `num_classes` is set, and the
    method's own metrics (MoCo v3: `moco_momentum`).

    Methods: the step, what happens after the update and the encoder a run exports
    are the training method's (`kclr.methods`; `method="simclr"` by default, which
    runs SimCLR or SupCon as the compiled loss says and owns SupCon's memory queue).

    Mixed precision: set `keras.mixed_precision.set_global_policy(...)` before
    building the models; the loss and the logits are computed in float32, and
    with `"mixed_float16"` `compile` wraps the optimizer in a
    `keras.optimizers.LossScaleOptimizer`.

    Args:
        encoder: `keras.Model` mapping images `[B, H, W, 3]` to features `[B, F]`.
        projection_head: layer mapping features to the list of hiddens
            `[h, ..., projection]` (e.g. `kclr.models.ProjectionHead`), or to
            the projection alone.
        num_classes: if set, a `kclr.models.SupervisedHead(num_classes)` (named
            `head_supervised`) is trained on the stopped-gradient hiddens.
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
            one replica per chunk and per-replica BatchNorm. `None`: off. Only
            methods that support it accept it (`simclr` does); others refuse it.
        method: the training method (`kclr.methods`): a registered name
            (`"simclr"`, the default, or a plugin's such as `"moco_v3"`), a spec
            `{"name": ..., "config": {...}}` or a `kclr.methods.Method`.
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
        method="simclr",
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
            self.supervised_head = SupervisedHead(self.num_classes, dtype=_head_dtype())
        from kclr import registry, spec

        # The method is a sublayer: what it adds (momentum copy, predictor, queue) is
        # part of `weights`, checkpoints and saved models.
        self.method = spec.resolve(registry.methods, method, "method")
        self.method.attach(self.encoder, self.projection_head)
        self.method.set_gradient_cache(gradient_cache_chunk_size)
        self.contrastive_loss = None
        self.supervised_loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, name="sup_loss"
        )
        self._image_shape = None
        self._checked_batch = None  # the global batch `check_batch` has checked
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.acc_tracker = keras.metrics.Mean(name="contrast_acc")
        self.entropy_tracker = keras.metrics.Mean(name="contrast_entropy")
        self.lr_tracker = LastValue(name="learning_rate")
        self.sup_loss_tracker = keras.metrics.Mean(name="sup_loss")
        self.sup_acc_tracker = keras.metrics.SparseCategoricalAccuracy(name="sup_acc")

    # ----------------------------------------------------------------- compile
    def compile(self, optimizer="lars", loss=None, jit_compile="auto", **kwargs):
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
                `(labels, features)`; `None` (the default): `"ntxent"` for a method
                that uses a loss, none for a method with its own (MoCo v3).
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
        if loss is None and self.method.uses_loss:
            loss = "ntxent"
        self.contrastive_loss = (
            None if loss is None else spec.resolve(registry.losses, loss, "loss")
        )
        self.method.bind(self.contrastive_loss)
        optimizer = spec.build_optimizer(registry.optimizers, registry.schedules, optimizer)
        policy = getattr(self.encoder, "dtype_policy", None)
        if (
            policy is not None
            and policy.name == "mixed_float16"
            and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        ):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        self._build_method_state()

    def _build_method_state(self):
        """Creates the method's state sized from the projections (e.g. a memory queue) now,
        so that its variables exist before the first step (a checkpoint restores them)."""
        if self._image_shape is not None:  # built: a forward sizes it
            self(tf.zeros((1, *self._image_shape)), training=False)
        elif getattr(self.encoder, "output", None) is not None:
            # A functional encoder: size it from the head's symbolic output.
            hiddens = self.projection_head(self.encoder.output)  # symbolic: builds the head
            projection = hiddens[-1] if isinstance(hiddens, (list, tuple)) else hiddens
            self.method.build_state(projection)

    @property
    def memory_queue(self):
        """The method's memory queue (`kclr.losses.MemoryQueue`), or `None`."""
        return getattr(self.method, "memory_queue", None)

    @property
    def export_encoder(self):
        """The encoder a run exports and evaluates (the method's choice)."""
        return self.method.export_encoder(self.encoder)

    def get_compile_config(self):
        if getattr(self, "optimizer", None) is None:
            return None
        loss = self.contrastive_loss
        return {
            "optimizer": keras.saving.serialize_keras_object(self.optimizer),
            "loss": None if loss is None else keras.saving.serialize_keras_object(loss),
            "jit_compile": bool(self.jit_compile),
        }

    def compile_from_config(self, config):
        optimizer = keras.saving.deserialize_keras_object(config["optimizer"])
        loss = config.get("loss")
        loss = None if loss is None else keras.saving.deserialize_keras_object(loss)
        self.compile(optimizer=optimizer, loss=loss, jit_compile=config.get("jit_compile", False))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        metrics = [self.loss_tracker, self.acc_tracker, self.entropy_tracker, self.lr_tracker]
        if self.supervised_head is not None:
            metrics += [self.sup_loss_tracker, self.sup_acc_tracker]
        return metrics + list(self.method.metrics_list)

    # ----------------------------------------------------------------- forward
    @property
    def parts(self) -> ModelParts:
        """The layers the forward runs (`kclr.trainer.step.ModelParts`)."""
        return ModelParts(
            self.encoder,
            self.projection_head,
            self.supervised_head,
            self.ft_proj_selector,
            self.memory_queue,
        )

    @property
    def batches(self) -> view_batches.ViewBatches:
        """The batch preparation (`kclr.trainer.batches.ViewBatches`) of this trainer."""
        return view_batches.ViewBatches(self.device_augmenter, self.num_views, self.augment_seed)

    def _record_image_shape(self, views):
        if self._image_shape is None:
            self._image_shape = view_batches.image_shape(views)
            if self._image_shape is not None:
                self.built = True

    def _augment_on_device(self, images, num_views):
        """The device augmentation of view-major `images` at the current step."""
        return self.batches.augment(images, num_views, self._step())

    def call(self, inputs, training=False):
        """Returns the projections `[B, V, D]` of views (or `[B, D]` of images)."""
        views, _ = view_batches.ViewBatches.unpack(inputs)
        views = tf.convert_to_tensor(views)
        self._record_image_shape(views)
        if views.shape.rank == 4 and self.device_augmenter is None:
            if views.dtype.is_integer:
                views = tf.image.convert_image_dtype(views, tf.float32)
            return forward(self.parts, views, 1, training).projections[:, 0]
        images, num_views, batch = self.batches.to_images(views, training, self._step())
        view_batches.assert_equal_replica_batches(batch)
        return forward(self.parts, images, num_views, training).projections

    def _step(self):
        """The optimizer's iterations (the augmentation seed's step), `None` before compile."""
        optimizer = getattr(self, "optimizer", None)  # unset while a saved model loads
        return None if optimizer is None else optimizer.iterations

    def _check_compiled(self):
        if getattr(self, "optimizer", None) is None:
            raise RuntimeError(
                "ContrastiveTrainer is not compiled. Call `trainer.compile(optimizer=..., "
                "loss=...)` first, e.g. `compile(optimizer='lars', loss='ntxent')`."
            )

    def _context(self) -> StepContext:
        self._check_compiled()
        return StepContext(
            parts=self.parts,
            batches=self.batches,
            contrastive_loss=self.contrastive_loss,
            supervised_loss=self.supervised_loss,
            optimizer=self.optimizer,
            variables=lambda: self.trainable_variables,
            replicas=_num_replicas(),
            chunk_size=self.gradient_cache_chunk_size,
        )

    def _update_metrics(self, outputs, labels):
        """Updates every reported metric from a step's `StepOutputs`."""
        replicas = _num_replicas()
        self.loss_tracker.update_state(outputs.contrastive * replicas)
        contrast = outputs.contrast
        if contrast is None:
            temperature, normalize = self.method.contrast_temperature(self.contrastive_loss)
            contrast = contrast_metrics(outputs.projections, temperature, normalize)
        self.acc_tracker.update_state(contrast[0])
        self.entropy_tracker.update_state(contrast[1])
        if outputs.supervised is not None:
            self.sup_loss_tracker.update_state(outputs.supervised * replicas)
            self.sup_acc_tracker.update_state(
                supervised_labels(labels, outputs.num_views), outputs.logits
            )
        self.lr_tracker.update_state(self.optimizer.learning_rate)
        self.method.update_metrics(outputs)

    def train_step(self, data):
        views, labels = view_batches.ViewBatches.unpack(data)
        context = self._context()
        self._record_image_shape(views)
        gradients, outputs = self.method.step(context, views, labels)
        self.optimizer.apply(gradients, self.trainable_variables)
        self.method.after_apply(context, outputs, labels)  # EMA update, queue push, ...
        self._update_metrics(outputs, labels)
        return self._logs()

    def test_step(self, data):
        views, labels = view_batches.ViewBatches.unpack(data)
        context = self._context()
        self._record_image_shape(views)
        self._update_metrics(self.method.evaluate_step(context, views, labels), labels)
        return self._logs()

    def _logs(self):
        logs = {m.name: m.result() for m in self.metrics}
        if _is_multi_worker(self.distribute_strategy):
            # Keras reduces multi-worker logs with `strategy.reduce("MEAN", v, axis=0)`,
            # which fails on scalars: give each value a leading axis of 1.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def fit(self, x=None, *args, **kwargs):
        """Keras's `fit`; a `tf.data.Dataset` gets tf.data autotuning off unless it chose.

        Without that, `fit` can return seconds (up to a minute) after its last step,
        waiting for autotuning's thread (`kclr.data.teardown`).
        """
        self._check_dataset_batch(x)
        if isinstance(x, (tf.data.Dataset, tf.distribute.DistributedDataset)) and not args:
            kwargs.setdefault("shuffle", False)  # datasets shuffle themselves; no Keras warning
        if "validation_data" in kwargs:
            kwargs["validation_data"] = closes_promptly(kwargs["validation_data"])
        return super().fit(closes_promptly(x), *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self._check_dataset_batch(x)
        return super().evaluate(closes_promptly(x), *args, **kwargs)

    def check_batch(self, global_batch_size: int, num_examples=None, source=None) -> int:
        """Checks a global batch against this trainer (replicas, gradient-cache chunks) and,
        when given, the size of the data; returns the per-replica batch.

        `fit` and `evaluate` check their dataset's static batch; a batch checked here
        (before the dataset exists, as `kclr fit` does) is not checked again.
        """
        per_replica = view_batches.check_batch(
            global_batch_size, self.distribute_strategy, self.gradient_cache_chunk_size,
            num_examples=num_examples, source=source,
        )  # fmt: skip
        self._checked_batch = int(global_batch_size)
        return per_replica

    def _check_dataset_batch(self, x):
        batch = view_batches.static_batch(x)
        if batch is not None and batch != self._checked_batch:
            self.check_batch(batch)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # An override of a private Keras method, kept because no public hook serves:
        # `fit`/`evaluate` call it before the first step and, for a distributed
        # iterator, build from `strategy.reduce("MEAN", batch)`, which fails for dict
        # batches with integer labels under MultiWorkerMirroredStrategy. `build()` and a
        # first call run too late (Keras calls this one first). Build from the first
        # replica's local batch instead.
        if iterator is not None and data_batch is None:
            strategy = self.distribute_strategy
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tf.nest.map_structure(
                    lambda x: (
                        strategy.experimental_local_results(x)[0]
                        if isinstance(x, tf.distribute.DistributedValues)
                        else x
                    ),
                    batch,
                )
                break
        return super()._maybe_symbolic_build(data_batch=data_batch)

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
            "method": keras.saving.serialize_keras_object(self.method),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "projection_head", "device_augmenter", "method"):
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
