"""Gradient caching (GradCache): one large-batch contrastive step on the memory of a chunk.

Reference: Gao, Zhang, Han, Callan, "Scaling Deep Contrastive Learning Batch Size
under Memory Limited Setup", RepL4NLP 2021 (https://arxiv.org/abs/2101.06983).

A contrastive loss couples every sample of the batch through its negatives, so plain
gradient accumulation over micro-batches computes a different (smaller-batch) loss.
Gradient caching computes the exact large-batch loss in two passes over chunks:

1. **Pass 1** forwards every chunk (no tape) and keeps only its projections.
2. The loss of the whole local batch is computed on the projections (under a
   `tf.distribute` strategy: against the candidates of all replicas, divided by the
   replica count, as without caching), with its gradient `dL/dz` per projection, a
   block of anchors at a time (`kclr.trainer.blockwise`).
3. **Pass 2** re-runs each chunk under a tape and pushes the cached `dL/dz` through it
   (the gradient of `sum(z * stop_gradient(dL/dz))`), accumulating the weight
   gradients. One optimizer step is then applied to the summed gradients.

Chunks. `chunk_size` counts **images** (samples), not views: chunk `k` holds images
`[k * chunk_size, (k + 1) * chunk_size)` of the local batch with all `V` of their
views, view-major, exactly what replica `k` of a strategy with per-replica batch
`chunk_size` receives. The local batch must be a multiple of `chunk_size`.

The guarantee. A chunk is a BatchNorm batch. So a gradient-cached step with `K`
chunks of `N` images equals one `MirroredStrategy` step on `K` replicas with
per-replica (not synchronised) BatchNorm and global negatives on the same global
batch: same loss, gradients and updated weights. BatchNorm moving statistics take
the mean of the `K` per-chunk updates (each from the step's initial statistics), which
is what the replicas' averaged statistics are. With synchronised BatchNorm across a
true batch of `K * N`, the normalisation statistics would cover the whole batch
instead: gradient caching with BatchNorm is "K replicas, local BN", not "one device".
Models without BatchNorm (or with frozen BN) get exactly the single-device step.

Layer state. Before each chunk of either pass the floating-point non-trainable
variables of the encoder and the projection head (BatchNorm moving statistics)
are reset to their values at the start of the step, and their per-chunk updates are
averaged at the end. The integer ones (Keras `SeedGenerator` states, used by dropout
and other in-model randomness) advance from chunk to chunk and are rewound before
pass 2, so pass 2 draws exactly the random numbers of pass 1.

The batch is never copied whole: each chunk is sliced from the batch as it came
(batch-major, often uint8) and converted or augmented on its own, in both passes. A
kclr device augmentation layer draws each image's parameters from the step's seed and
the image's row in the global batch (`ViewBatches.augment_rows`), so chunk `k` is
augmented exactly as within the whole batch, or on replica `k`. Any other
`device_augmenter` runs once on the whole local batch before chunking.

The supervised head (`num_classes`) sees stopped-gradient features, so its loss is
computed chunk by chunk in pass 2 (weighted by `1 / K`, giving the batch mean).
Mixed precision: `dL/dz` comes from the scaled loss (`optimizer.scale_loss`), so the
accumulated gradients are scaled as without caching and `LossScaleOptimizer`
unscales them.

On one replica the chunk loops are `tf.while_loop`s (`parallel_iterations=1`): one
chunk's activations are alive at a time and one chunk is traced, whatever the number
of chunks. Under a multi-replica strategy they are unrolled (the number of chunks is
static) with explicit control dependencies between chunks, because `tf.distribute`
forbids cross-replica synchronisation (synchronised BatchNorm) inside a
`tf.while_loop`; the graph then grows with the number of chunks.

Differences from the GradCache reference code (PyTorch): BatchNorm moving statistics
are kept consistent with the replica equivalence above (GradCache updates them in
both passes), and random state is replayed by rewinding Keras seed-generator
variables instead of saving and restoring a global RNG state.
"""

from __future__ import annotations

import tensorflow as tf

from kclr.losses.core import to_loss_dtype
from kclr.trainer import blockwise
from kclr.trainer.batches import assert_equal_replica_batches, global_rows, num_chunks
from kclr.trainer.step import StepContext, StepOutputs, forward, supervised_labels

__all__ = ["gradient_cache_step", "num_chunks"]


class _LayerState:
    """The non-trainable state of the encoder and the head, split by role (see module doc)."""

    def __init__(self, parts):
        variables = parts.encoder.non_trainable_variables
        variables = variables + parts.projection_head.non_trainable_variables
        seen, unique = set(), []
        for v in variables:
            if id(v) not in seen:
                seen.add(id(v))
                unique.append(v)
        self.statistics = [v for v in unique if tf.as_dtype(v.dtype).is_floating]
        self.random = [v for v in unique if not tf.as_dtype(v.dtype).is_floating]

    def rewind_random(self, values):
        """Rewinds the random state to `values`, so the next pass draws the same numbers."""
        self.assign(self.random, values)

    @staticmethod
    def read(variables):
        return [tf.identity(v.value) for v in variables]

    @staticmethod
    def assign(variables, values):
        for v, value in zip(variables, values, strict=True):
            v.assign(value)


def _after(tensors, x):
    """`x`, computed only once every tensor of `tensors` is (serialises the chunks)."""
    tensors = [t for t in tensors if t is not None]
    if not tensors or tf.executing_eagerly():
        return x
    with tf.control_dependencies(tensors):
        return tf.identity(x)


def gradient_cache_step(context: StepContext, views, labels):
    """One gradient-cached step (a `kclr.trainer.step.StepFn`; applies nothing).

    Args:
        context: the model's parts and losses; `context.chunk_size` images per chunk.
        views: the batch's views `[B, V, H, W, C]` (or raw images with a device augmenter).
        labels: `[B]` labels or `None`.

    Returns:
        `(gradients, outputs)`: the summed gradients of every chunk (`None` for variables
        no chunk reached) and `StepOutputs` with the projections `[B, V, D]` of pass 1,
        the supervised logits `[V*B, classes]` (or `None`), the losses and
        `(contrast_acc, contrast_entropy)` computed a block at a time.
    """
    batches, rank = context.batches, views.shape.rank
    batch_major = batches.augments_by_rows() and (
        rank == 5 or (rank == 4 and batches.device_augmenter is not None)
    )
    if batch_major:
        # Chunks are sliced from the batch as it came (batch-major, often uint8) and
        # augmented one by one in both passes (`_Step.chunk`): no float32 or
        # augmented copy of the whole batch is made.
        num_views = batches.num_views_of(views) if rank == 5 else batches.num_views
        images, batch, static_images = views, tf.shape(views)[0], views.shape[0]
    else:  # augmented once
        images, num_views, batch = batches.to_images(
            views, training=True, step=context.optimizer.iterations
        )
        static_images = None if images.shape[0] is None else images.shape[0] // num_views
    assert_equal_replica_batches(batch)
    step = _Step(context, images, labels, num_views, static_images, batch_major)
    # A strategy forbids cross-replica synchronisation (synchronised BN) inside a
    # `tf.while_loop`: with several replicas the chunk loop is unrolled instead.
    unrolled = tf.distribute.get_strategy().num_replicas_in_sync > 1
    features = step.pass_one(unrolled)
    loss_fn, blocks = context.contrastive_loss, step.chunks > 1
    # The loss of the whole batch and dL/dz [B, V, D], a block of anchors at a time.
    contrastive, feature_grads = blockwise.loss_and_gradient(
        loss_fn, context.optimizer, features, labels, blocks
    )
    gradients, logits_sup, sup = step.pass_two(feature_grads, unrolled)
    contrast = blockwise.contrast_metrics(loss_fn, features)
    return gradients, StepOutputs(features, logits_sup, contrastive, sup, num_views, contrast)


class _Step:
    """The chunks of one step and the two passes over them."""

    def __init__(self, context, images, labels, num_views, local_batch, batch_major):
        self.context = context
        self.num_views = num_views
        self.chunks = num_chunks(local_batch, context.chunk_size)
        self.size = local_batch // self.chunks
        # Reshapes only (no copy): chunk k is images [k*N, (k+1)*N) of every view.
        # Batch-major views [B, V, ...] -> [K, N, V, ...]; view-major images
        # [V*B, ...] -> [V, K, N, ...]. See `chunk`.
        self.batch_major = batch_major
        self._tiled = batch_major and images.shape.rank == 4  # raw images: V copies each
        self._image_shape = tf.shape(images)[-3:]
        self._static_shape = [num_views * self.size, *images.shape[-3:]]
        if not batch_major:
            grouped = [num_views, self.chunks, -1]
        else:
            grouped = [self.chunks, -1] if self._tiled else [self.chunks, -1, num_views]
        self._grouped = tf.reshape(images, tf.concat([grouped, self._image_shape], 0))
        self.labels = None
        if labels is not None:
            self.labels = tf.reshape(tf.cast(labels, tf.int32), [self.chunks, self.size])
        self.state = _LayerState(context.parts)
        self.initial_statistics = _LayerState.read(self.state.statistics)
        self.initial_random = _LayerState.read(self.state.random)
        self.variables = None

    def rows(self, k):
        """Indices `[N]` of chunk `k`'s images in the local batch (static size)."""
        return k * self.size + tf.range(self.size)

    def chunk(self, k):
        """The view-major float images `[V*N, H, W, C]` of chunk `k`, augmented on the
        device when the batch came raw (a copy of one chunk only)."""
        if not self.batch_major:  # augmented already
            chunk = tf.gather(self._grouped, k, axis=1)  # [V, N, ...]; static shape under XLA
            return self._flat(chunk)
        chunk = tf.gather(self._grouped, k)  # [N, V, ...] or raw images [N, ...]
        if self._tiled:
            chunk = tf.stack([chunk] * self.num_views)
        else:
            chunk = tf.transpose(chunk, [1, 0, 2, 3, 4])
        # Each image's own draws: its row in the global view-major batch.
        rows = global_rows(self.chunks * self.size, self.num_views, k * self.size, self.size)
        step = self.context.optimizer.iterations
        return self.context.batches.augment_rows(self._flat(chunk), *rows, step)

    def _flat(self, chunk):
        """`[V, N, H, W, C]` -> `[V*N, H, W, C]` with the static shape."""
        chunk = tf.reshape(chunk, tf.concat([[-1], self._image_shape], 0))
        # Keep the static shape: convolutions of unknown spatial size run much slower.
        chunk.set_shape(self._static_shape)
        return chunk

    def _features(self, k):
        """Pass-1 projections `[N, V, D]` of chunk `k` (moving statistics reset first)."""
        _LayerState.assign(self.state.statistics, self.initial_statistics)
        # Builds the supervised head and sizes the queue before the step lists the variables.
        outputs = forward(self.context.parts, self.chunk(k), self.num_views, training=True)
        return tf.stop_gradient(outputs.projections)

    def pass_one(self, unrolled):
        """Projections `[B, V, D]` of every chunk, without a tape."""
        features = [self._features(0)]  # outside any loop: builds lazily created layers
        if unrolled:
            for k in range(1, self.chunks):
                features.append(self._features(_after(features[-1:], k)))
            return tf.concat(features, axis=0)
        array = tf.TensorArray(features[0].dtype, size=self.chunks, infer_shape=False)
        array = array.write(0, features[0])
        _, array = tf.while_loop(
            lambda k, _: k < self.chunks,
            lambda k, a: (k + 1, a.write(k, self._features(k))),
            (tf.constant(1), array),
            parallel_iterations=1,
        )
        features = array.concat()  # [B, V, D]
        features.set_shape([self.chunks * self.size, self.num_views, None])
        return features

    def _chunk_gradients(self, k, feature_grads, reached):
        """Pass 2 on chunk `k`: weight gradients, new moving statistics, sup loss and logits."""
        optimizer = self.context.optimizer
        _LayerState.assign(self.state.statistics, self.initial_statistics)
        dz = tf.gather(feature_grads, self.rows(k))  # [N, V, D]
        dz = tf.reshape(tf.transpose(dz, [1, 0, 2]), [-1, tf.shape(dz)[-1]])  # [V*N, D]
        sup, logits = None, None
        with tf.GradientTape() as tape:
            outputs = forward(self.context.parts, self.chunk(k), self.num_views, training=True)
            z = to_loss_dtype(outputs.hiddens[-1])
            # d objective / dz is exactly the cached dL/dz.
            objective = tf.reduce_sum(z * tf.stop_gradient(tf.cast(dz, z.dtype)))
            if outputs.logits is not None and self.labels is not None:
                logits = outputs.logits
                sup_labels = supervised_labels(self.labels[k], self.num_views)
                sup = self.context.supervised_loss(sup_labels, logits) / self.chunks  # batch mean
                objective = objective + tf.cast(optimizer.scale_loss(sup), objective.dtype)
        gradients = tape.gradient(objective, self.variables)
        out = []
        for i, (gradient, variable) in enumerate(zip(gradients, self.variables, strict=True)):
            reached[i] = reached[i] or gradient is not None
            out.append(tf.zeros(variable.shape, variable.dtype) if gradient is None else gradient)
        out = [tf.convert_to_tensor(g) for g in out]
        if logits is not None:
            logits = tf.reshape(logits, [self.num_views, self.size, -1])  # [V, N, C]
        return out, _LayerState.read(self.state.statistics), sup, logits

    def pass_two(self, feature_grads, unrolled):
        """Replays each chunk with a tape; returns (gradients, supervised logits, sup loss)."""
        context = self.context
        self.variables = context.variables()
        self.state.rewind_random(self.initial_random)
        reached = [False] * len(self.variables)
        supervised = context.parts.supervised_head is not None and self.labels is not None
        if unrolled:
            results, previous = [], [feature_grads]
            for k in range(self.chunks):
                results.append(self._chunk_gradients(_after(previous, k), feature_grads, reached))
                previous = results[-1][0] + results[-1][1]
            gradients = [tf.add_n(list(g)) for g in zip(*[r[0] for r in results], strict=True)]
            statistics = [tf.add_n(list(s)) for s in zip(*[r[1] for r in results], strict=True)]
            sup = tf.add_n([r[2] for r in results]) if supervised else None
            logits = tf.concat([r[3] for r in results], axis=1) if supervised else None
        else:
            gradients, statistics, sup, logits = self._loop_two(feature_grads, reached, supervised)
        _LayerState.assign(self.state.statistics, [s / self.chunks for s in statistics])
        if supervised:
            # The penalty on the supervised kernel (official LARS setup), once per step.
            with tf.GradientTape() as tape:
                penalty = tf.cast(context.penalty(), sup.dtype)
                penalty = context.optimizer.scale_loss(penalty)
            kernel = context.parts.supervised_head.kernel
            index = [id(v) for v in self.variables].index(id(kernel))
            extra = tape.gradient(penalty, kernel)
            if extra is not None:
                gradients[index] = gradients[index] + extra
            logits = tf.reshape(logits, [-1, tf.shape(logits)[-1]])  # view-major [V*B, C]
        # Variables no chunk reached keep a `None` gradient, as without caching.
        gradients = [g if r else None for g, r in zip(gradients, reached, strict=True)]
        return gradients, logits, sup

    def _loop_two(self, feature_grads, reached, supervised):
        """Pass 2 as a `tf.while_loop`: one chunk's activations alive at a time."""
        zeros = [tf.zeros(v.shape, v.dtype) for v in self.variables]
        statistics = [tf.zeros_like(s) for s in self.initial_statistics]
        dtype = feature_grads.dtype
        sup = tf.zeros([], dtype)
        logits = tf.TensorArray(dtype, size=self.chunks, infer_shape=False)

        def body(k, gradients, statistics, sup, logits):
            g, s, chunk_sup, chunk_logits = self._chunk_gradients(k, feature_grads, reached)
            gradients = [a + b for a, b in zip(gradients, g, strict=True)]
            statistics = [a + b for a, b in zip(statistics, s, strict=True)]
            if chunk_sup is not None:
                sup = sup + tf.cast(chunk_sup, dtype)
                # [V, N, C] -> [N, V, C] so that concat over chunks gives [B, V, C].
                logits = logits.write(k, tf.transpose(tf.cast(chunk_logits, dtype), [1, 0, 2]))
            return k + 1, gradients, statistics, sup, logits

        _, gradients, statistics, sup, logits = tf.while_loop(
            lambda k, *_: k < self.chunks,
            body,
            (tf.constant(0), zeros, statistics, sup, logits),
            parallel_iterations=1,
        )
        if not supervised:
            return gradients, statistics, None, None
        logits = tf.transpose(logits.concat(), [1, 0, 2])  # [B, V, C] -> [V, B, C]
        return gradients, statistics, sup, logits
