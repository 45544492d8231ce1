"""Gradient caching (GradCache): one large-batch contrastive step on the memory of a chunk.

Reference: Gao, Zhang, Han, Callan, "Scaling Deep Contrastive Learning Batch Size
under Memory Limited Setup", RepL4NLP 2021 (https://arxiv.org/abs/2101.06983).

A contrastive loss couples every sample of the batch through its negatives, so plain
gradient accumulation over micro-batches computes a different (smaller-batch) loss.
Gradient caching computes the exact large-batch loss in two passes over chunks:

1. **Pass 1** forwards every chunk (no tape) and keeps only its projections.
2. The loss of the whole local batch is computed on the projections (under a
   `tf.distribute` strategy: against the candidates of all replicas, divided by the
   replica count, as without caching), with its gradient `dL/dz` per projection.
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
pass 2, so pass 2 draws exactly the random numbers of pass 1. Device augmentation
(`device_augmenter`) runs once on the whole local batch before chunking.

The supervised head (`num_classes`) sees stopped-gradient features, so its loss is
computed chunk by chunk in pass 2 (weighted by `1 / K`, giving the batch mean).
Mixed precision: `dL/dz` comes from the scaled loss (`optimizer.scale_loss`), so the
accumulated gradients are scaled as without caching and `LossScaleOptimizer`
unscales them.

The chunk loop is unrolled in the graph (its length is static) with explicit control
dependencies, so one chunk's activations are alive at a time. Unrolling keeps
cross-replica synchronisation (synchronised BatchNorm, variable updates) legal
under `tf.distribute`, which forbids it inside `tf.while_loop`.
"""

from __future__ import annotations

import tensorflow as tf

from kclr.losses.core import to_loss_dtype


def num_chunks(batch: int | None, chunk_size: int) -> int:
    """Returns the number of chunks of a local batch, or raises a clear error."""
    if batch is None:
        raise ValueError(
            "Gradient caching needs a static batch size, but the batch dimension is unknown. "
            "Batch the dataset with `drop_remainder=True` (kclr.data.pretraining_dataset does)."
        )
    if batch % chunk_size:
        raise ValueError(
            f"Gradient caching splits the local batch into chunks of {chunk_size} images, but "
            f"received a local batch of {batch} images, which is not a multiple of it. Use a "
            f"`gradient_cache_chunk_size` that divides the per-replica batch (e.g. "
            f"{_divisor_below(batch, chunk_size)}) or change the batch size."
        )
    return batch // chunk_size


def _divisor_below(batch: int, chunk_size: int) -> int:
    return max(d for d in range(1, min(batch, chunk_size) + 1) if batch % d == 0)


def split_chunks(images, num_views: int, chunks: int):
    """Splits view-major images `[V*B, ...]` into `chunks` view-major chunks `[V*N, ...]`.

    Chunk `k` holds images `[k*N, (k+1)*N)` of every view (`N = B / chunks`).
    """
    shape = tf.shape(images)
    # [V*B, ...] -> [V, K, N, ...]
    grouped = tf.reshape(images, tf.concat([[num_views, chunks, -1], shape[1:]], axis=0))
    return [tf.reshape(grouped[:, k], tf.concat([[-1], shape[1:]], axis=0)) for k in range(chunks)]


def _project(trainer, images):
    """Encoder + projection head on view-major images: the list of hiddens."""
    h = trainer.encoder(images, training=True)
    hiddens = trainer.projection_head(h, training=True)
    if not isinstance(hiddens, (list, tuple)):
        hiddens = [h, hiddens]
    return hiddens


def _supervised(trainer, hiddens, labels, num_views: int):
    """The supervised head's logits `[V*N, C]` and mean loss on one chunk."""
    sup_input = tf.stop_gradient(to_loss_dtype(hiddens[trainer.ft_proj_selector]))
    logits = trainer.supervised_head(sup_input)
    sup_labels = tf.tile(tf.reshape(tf.cast(labels, tf.int32), [-1]), [num_views])
    return logits, trainer.supervised_loss(sup_labels, logits)


def _to_features(z, num_views: int):
    """View-major projections `[V*N, D]` -> `[N, V, D]`."""
    return tf.transpose(tf.reshape(z, [num_views, -1, tf.shape(z)[-1]]), [1, 0, 2])


class _LayerState:
    """The non-trainable state of the encoder and the head, split by role (see module doc)."""

    def __init__(self, trainer):
        variables = trainer.encoder.non_trainable_variables
        variables = variables + trainer.projection_head.non_trainable_variables
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


def gradient_cache_step(trainer, views, labels):
    """One gradient-cached training step of `trainer`; returns the logs.

    Args:
        trainer: a compiled `kclr.ContrastiveTrainer` with `gradient_cache_chunk_size`.
        views: the batch's views `[B, V, H, W, C]` (or raw images with a device augmenter).
        labels: `[B]` labels or `None`.

    Returns:
        `(features, logits_sup, contrastive, sup, num_views)` for the metrics: the
        projections `[B, V, D]` of pass 1, the supervised logits `[V*B, classes]` (or
        `None`), the contrastive loss, the supervised loss (or `None`).
    """
    images, num_views, batch = trainer._views_to_batch(views, training=True)
    trainer._assert_equal_replica_batches(batch)
    if trainer._image_shape is None and images.shape[1:].is_fully_defined():
        trainer._image_shape = tuple(int(d) for d in images.shape[1:])
        trainer.built = True
    static_images = images.shape[0]
    local_batch = None if static_images is None else static_images // num_views
    chunks = num_chunks(local_batch, trainer.gradient_cache_chunk_size)
    chunk_images = split_chunks(images, num_views, chunks)
    size = local_batch // chunks
    label_chunks = [None] * chunks
    if labels is not None:
        flat_labels = tf.reshape(labels, [-1])
        label_chunks = [flat_labels[k * size : (k + 1) * size] for k in range(chunks)]

    state = _LayerState(trainer)
    initial_statistics = _LayerState.read(state.statistics)
    initial_random = _LayerState.read(state.random)

    # Pass 1: projections of every chunk, no tape.
    features = []
    for k in range(chunks):
        x = _after(features[-1:], chunk_images[k])
        _LayerState.assign(state.statistics, initial_statistics)
        hiddens = _project(trainer, x)
        head = trainer.supervised_head
        if head is not None and not head.built:  # before the step lists the variables
            head.build(hiddens[trainer.ft_proj_selector].shape)
        z = to_loss_dtype(hiddens[-1])
        if trainer.memory_queue is not None:
            trainer.memory_queue.build_for(z)
        features.append(tf.stop_gradient(_to_features(z, num_views)))
    features = tf.concat(features, axis=0)  # [B, V, D]

    # The loss of the whole batch and its gradient with respect to the projections.
    optimizer = trainer.optimizer
    with tf.GradientTape() as tape:
        tape.watch(features)
        contrastive = trainer.contrastive_loss(labels, features)
        scaled = optimizer.scale_loss(contrastive)
    feature_grads = tape.gradient(scaled, features)  # [B, V, D]

    # Pass 2: replay each chunk with a tape and push the cached gradients through it.
    variables = trainer.trainable_variables
    state.rewind_random(initial_random)
    accumulated = [tf.zeros(v.shape, v.dtype) for v in variables]
    reached = [False] * len(variables)
    statistics_sum = [tf.zeros_like(v) for v in initial_statistics]
    sup_total, logits_sup = None, []
    previous = [feature_grads]
    for k in range(chunks):
        x = _after(previous, chunk_images[k])
        _LayerState.assign(state.statistics, initial_statistics)
        dz = feature_grads[k * size : (k + 1) * size]  # [N, V, D]
        dz = tf.reshape(tf.transpose(dz, [1, 0, 2]), [-1, tf.shape(dz)[-1]])  # [V*N, D]
        with tf.GradientTape() as tape:
            hiddens = _project(trainer, x)
            z = to_loss_dtype(hiddens[-1])
            objective = tf.reduce_sum(z * tf.stop_gradient(tf.cast(dz, z.dtype)))
            if trainer.supervised_head is not None and labels is not None:
                logits, sup = _supervised(trainer, hiddens, label_chunks[k], num_views)
                sup = sup / chunks
                extra = sup
                if k == 0:
                    extra = extra + tf.cast(trainer._supervised_weight_decay(), sup.dtype)
                objective = objective + tf.cast(optimizer.scale_loss(extra), objective.dtype)
                sup_total = sup if sup_total is None else sup_total + sup
                logits_sup.append(tf.reshape(logits, [num_views, size, -1]))
        gradients = tape.gradient(objective, variables)
        for i, gradient in enumerate(gradients):
            if gradient is not None:
                reached[i] = True
                accumulated[i] = accumulated[i] + tf.convert_to_tensor(gradient)
        new_statistics = _LayerState.read(state.statistics)
        statistics_sum = [s + v for s, v in zip(statistics_sum, new_statistics, strict=True)]
        previous = [g for g in accumulated] + new_statistics
    _LayerState.assign(state.statistics, [s / chunks for s in statistics_sum])
    # Variables no chunk reached keep a `None` gradient, as without caching.
    optimizer.apply(
        [g if r else None for g, r in zip(accumulated, reached, strict=True)], variables
    )

    if logits_sup:
        # [V, N, C] per chunk -> [V, B, C] -> view-major [V*B, C], as without caching.
        logits_sup = tf.concat(logits_sup, axis=1)
        logits_sup = tf.reshape(logits_sup, [-1, tf.shape(logits_sup)[-1]])
    else:
        logits_sup = None
    return features, logits_sup, contrastive, sup_total, num_views
