"""`MemoryQueue`: a FIFO of past projections and labels, extra candidates of SupCon.

Reference: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020: the best
ImageNet result (79.1% top-1, ResNet-50, HobbitLong/SupContrast README) uses the "MoCo
trick" (He et al., "Momentum Contrast for Unsupervised Visual Representation
Learning", CVPR 2020): a queue of past embeddings enlarges the set of candidates far
beyond the batch.

kclr keeps the queue part of that trick: the projections of each training batch (all
views, gathered from every replica) are pushed into the queue after the step's loss is
computed, and the oldest entries fall out. Unlike MoCo, the entries come from the
trained encoder itself, not from a momentum (EMA) copy of it; they are as stale as the
queue is long. Queue entries are candidates only, never anchors, and carry no gradient.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from kclr.losses.core import cross_replica_concat, to_loss_dtype


@keras.saving.register_keras_serializable(package="kclr")
class MemoryQueue(keras.layers.Layer):
    """A FIFO queue of `size` past projections with their labels, as Keras variables.

    The state (entries, labels, fill count, write position) is made of non-trainable
    Keras variables, so a `ContrastiveTrainer` compiled with a loss that owns a queue
    (`kclr.losses.SupCon(queue_size=...)`) lists them in `trainer.weights`: they are
    saved by `save_weights`, `.keras` files and `kclr fit` checkpoints, and a resumed
    run continues the queue. The queue is built (its feature size fixed) at the
    trainer's first forward pass.

    Entries are single views: one step pushes `views * global_batch` entries, in
    view-major order, and a queue of `size` holds `size / (views * global_batch)` steps.
    Unfilled slots are masked out of the loss. Without labels (SimCLR), entries are
    stored with label -1 and are negatives only.

    Args:
        size: number of entries (projections).
        name: layer name.

    Example:

    >>> import numpy as np, kclr
    >>> queue = kclr.losses.MemoryQueue(4)
    >>> queue.build_for(np.zeros((1, 2, 3), "float32"))
    >>> queue.enqueue(np.ones((1, 2, 3), "float32"), np.array([7]))
    >>> [int(x) for x in queue.candidates()[1]], int(queue.filled.numpy())
    ([7, 7, -1, -1], 2)
    """

    def __init__(self, size: int, name: str = "memory_queue", **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(name=name, **kwargs)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(
                f"`queue_size` must be a positive integer (entries); received {size!r}."
            )
        self.size = size

    def build_for(self, features) -> None:
        """Creates the variables for features `[..., dim]` (their last axis and dtype)."""
        if self.built:
            return
        dim = int(features.shape[-1])
        dtype = to_loss_dtype(tf.zeros([0], features.dtype)).dtype.name
        self.features = self.add_weight(
            shape=(self.size, dim),
            initializer="zeros",
            dtype=dtype,
            trainable=False,
            aggregation="only_first_replica",  # every replica writes the same gathered batch
            name="features",
        )
        self.labels = self.add_weight(
            shape=(self.size,),
            initializer=keras.initializers.Constant(-1),
            dtype="int32",
            trainable=False,
            aggregation="only_first_replica",
            name="labels",
        )
        self.filled = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False,
            aggregation="only_first_replica", name="filled",
        )  # fmt: skip
        self.position = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False,
            aggregation="only_first_replica", name="position",
        )  # fmt: skip
        self.built = True

    def build(self, input_shape=None):
        # Built by `build_for` once the feature size is known; nothing to do here.
        pass

    def candidates(self):
        """Returns `(features [size, dim], labels [size], valid [size] float)`."""
        valid = tf.range(self.size) < self.filled.value
        return (
            tf.identity(self.features.value),
            tf.identity(self.labels.value),
            tf.cast(valid, self.features.dtype),
        )

    def enqueue(self, features, labels=None) -> None:
        """Pushes the projections `[B, V, D]` of the local batch, gathered from every replica."""
        features = tf.stop_gradient(to_loss_dtype(features))
        features = cross_replica_concat(tf.cast(features, self.features.dtype))  # [N, V, D]
        views = tf.shape(features)[1]
        entries = tf.reshape(tf.transpose(features, [1, 0, 2]), [-1, self.features.shape[-1]])
        if labels is None:
            entry_labels = -tf.ones(tf.shape(entries)[:1], tf.int32)
        else:
            labels = cross_replica_concat(tf.reshape(tf.cast(labels, tf.int32), [-1]))  # [N]
            entry_labels = tf.tile(labels, [views])  # view-major, as the entries
        # A push larger than the queue keeps its newest `size` entries.
        entries, entry_labels = entries[-self.size :], entry_labels[-self.size :]
        count = tf.shape(entries)[0]
        slots = tf.math.floormod(self.position.value + tf.range(count), self.size)[:, None]
        self.features.assign(tf.tensor_scatter_nd_update(self.features.value, slots, entries))
        self.labels.assign(tf.tensor_scatter_nd_update(self.labels.value, slots, entry_labels))
        self.position.assign(tf.math.floormod(self.position.value + count, self.size))
        self.filled.assign(tf.minimum(self.filled.value + count, self.size))

    def get_config(self):
        return {**super().get_config(), "size": self.size}
