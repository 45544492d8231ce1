"""Strategy resolution: default, mirrored (several GPUs), multi-worker and TPU.

Example:

```python
import kclr

strategy = kclr.distribute.get_strategy("auto")
per_replica = kclr.distribute.check_global_batch_size(256, strategy)
with strategy.scope():
    trainer = kclr.ContrastiveTrainer(...)
```
"""

from __future__ import annotations

import json
import os
from typing import Any

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")


def _tf():
    import tensorflow as tf

    return tf


def _tf_config_workers() -> int:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"TF_CONFIG is not valid JSON ({error}); received {raw[:200]!r}. Expected "
            '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}.'
        ) from error
    cluster = config.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _tpu_configured(tpu: str | None) -> bool:
    return bool(tpu) or bool(os.environ.get("TPU_NAME"))


def get_strategy(
    name: str = "auto",
    devices: list[str] | None = None,
    tpu: str | None = None,
    communication: str = "auto",
) -> Any:
    """Returns a `tf.distribute.Strategy` by name.

    `"auto"` picks, in order: a TPU strategy when a TPU is configured (the `tpu`
    argument or the `TPU_NAME` environment variable), a multi-worker strategy
    when `TF_CONFIG` names more than one worker, a `MirroredStrategy` when there
    are several GPUs, and the default (single-device) strategy otherwise.

    Use synchronized BatchNorm in the models (`sync_bn=True` in `kclr.models`)
    so that BN statistics cover the global batch, as the official code.

    Args:
        name: one of `"auto"`, `"default"`, `"mirrored"`, `"multiworker"`, `"tpu"`.
        devices: devices for `"mirrored"` (default: all GPUs, else the CPU).
        tpu: TPU name or address for `TPUClusterResolver` (`"local"` on a TPU VM).
        communication: `"auto"`, `"ring"` or `"nccl"` for `"multiworker"`.

    Returns:
        A `tf.distribute.Strategy`.

    Example:

    >>> import kclr
    >>> kclr.distribute.get_strategy("default").num_replicas_in_sync
    1
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}. Expected one of {', '.join(STRATEGIES)}.")
    tf = _tf()
    if name == "auto":
        if _tpu_configured(tpu):
            name = "tpu"
        elif _tf_config_workers() > 1:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        implementations = {
            "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
            "ring": tf.distribute.experimental.CommunicationImplementation.RING,
            "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
        }
        if communication not in implementations:
            raise ValueError(
                f"Unknown communication {communication!r}; expected one of {sorted(implementations)}."
            )
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=implementations[communication]
        )
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu or os.environ.get("TPU_NAME") or ""
    )
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def check_global_batch_size(global_batch_size: int, strategy: Any = None) -> int:
    """Checks that the global batch divides across replicas; returns the per-replica batch.

    Args:
        global_batch_size: the global batch size.
        strategy: a `tf.distribute.Strategy` (default: the current one).

    Raises:
        ValueError: if the global batch is not a positive multiple of the replica count.

    Example:

    >>> import kclr
    >>> kclr.distribute.check_global_batch_size(256)
    256
    """
    if strategy is None:
        strategy = _tf().distribute.get_strategy()
    replicas = int(strategy.num_replicas_in_sync)
    if (
        isinstance(global_batch_size, bool)
        or not isinstance(global_batch_size, int)
        or global_batch_size <= 0
    ):
        raise ValueError(
            f"The global batch size must be a positive integer; received {global_batch_size!r}."
        )
    if global_batch_size % replicas:
        lower = global_batch_size // replicas * replicas
        upper = lower + replicas
        suggestion = f"{lower} or {upper}" if lower else f"{upper}"
        raise ValueError(
            f"The global batch size {global_batch_size} does not divide across the "
            f"{replicas} replicas of {type(strategy).__name__}: every replica needs the "
            f"same batch. Use a multiple of {replicas}, e.g. {suggestion}."
        )
    return global_batch_size // replicas
