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


def is_multi_worker(strategy: Any) -> bool:
    """True when `strategy` spans several workers (a multi-worker strategy in cluster mode)."""
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def is_chief(strategy: Any = None) -> bool:
    """True on the worker that writes files: the chief, or worker 0 when there is no chief.

    Always True without a strategy or with a single-worker strategy.
    """
    if strategy is None or not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def check_global_batch_size(
    global_batch_size: int,
    strategy: Any = None,
    num_examples: int | None = None,
    source: Any = None,
) -> int:
    """Checks the global batch once, for every consumer; returns the per-replica batch.

    The batch must be a positive integer, divide across the replicas, and (when
    `num_examples` is given) fit at least once in the training data.

    Args:
        global_batch_size: the global batch size.
        strategy: a `tf.distribute.Strategy` (default: the current one).
        num_examples: the number of training examples, if known.
        source: the data's name, for the message.

    Raises:
        ValueError: naming the batch, what was expected and a value that works.

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
            f"same batch. Use a multiple of {replicas}, e.g. {suggestion} "
            "(`--set data.global_batch_size=...`)."
        )
    if num_examples is not None and global_batch_size > num_examples:
        raise ValueError(
            f"The global batch size {global_batch_size} is larger than the {num_examples} "
            f"training examples of {source!r}: there is no full batch. Lower it, e.g. "
            f"`--set data.global_batch_size={max(replicas, num_examples // 2 // replicas * replicas)}`."
        )
    return global_batch_size // replicas
