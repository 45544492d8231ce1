"""BatchNormalization whose synchronisation costs nothing on one replica."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="kclr")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` that synchronises only across several replicas.

    With `synchronized=True`, Keras computes the batch moments as `E[x^2] - E[x]^2` from
    all-reduced sums even when there is a single replica (the default strategy has a
    replica context too): an extra pass over every activation and a numerically
    different variance, for the same statistics. This layer takes the synchronised path
    only when the replica context holds more than one replica, and Keras's ordinary
    per-batch moments otherwise, so `sync_bn=True` computes exactly what
    `sync_bn=False` computes on one device, at the same cost.

    Args:
        **kwargs: the arguments of `keras.layers.BatchNormalization`.

    Example:

    ```python
    bn = kclr.models.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=True)
    ```
    """

    def _moments(self, inputs, mask):
        if self.synchronized and mask is None and not _several_replicas():
            return ops.moments(inputs, axes=self._reduction_axes, synchronized=False)
        return super()._moments(inputs, mask)


def _several_replicas() -> bool:
    context = tf.distribute.get_replica_context()
    return context is not None and context.num_replicas_in_sync > 1
