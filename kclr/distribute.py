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
import re
from typing import Any

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")

# EX_UNAVAILABLE of sysexits.h: a peer of the run is gone. `kclr fit` exits with it when
# another worker was lost; restart every worker with `--resume`.
WORKER_LOST_EXIT_CODE = 69


class WorkerLostError(RuntimeError):
    """Another worker of a multi-worker run stopped answering (killed, crashed, frozen).

    Attributes: `tasks` (the lost tasks TensorFlow named, e.g.
    `["/job:worker/replica:0/task:1"]`; empty when it named none), `checkpoint_step`
    (the last checkpoint every worker can resume from, or None).
    """

    def __init__(self, tasks: list[str], checkpoint_step: int | None, detail: str) -> None:
        self.tasks, self.checkpoint_step = list(tasks), checkpoint_step
        lost = ", ".join(self.tasks) if self.tasks else "another worker (TensorFlow named none)"
        resume = (
            f"the last checkpoint is step {checkpoint_step}"
            if checkpoint_step is not None
            else "no checkpoint was written yet"
        )
        super().__init__(
            f"Lost worker {lost}: {detail} Restart every worker with `kclr fit ... --resume` "
            f"({resume}; exit code {WORKER_LOST_EXIT_CODE})."
        )


_TASK = re.compile(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)")
# The line of TensorFlow's message that says what happened to the peer.
_CAUSE = re.compile(r"unhealthy|heartbeat|reset by peer|socket closed|aborted by|deadline", re.I)


def lost_worker(error: BaseException, strategy: Any, checkpoint_step: int | None = None):
    """The `WorkerLostError` for a collective that failed because a peer is gone, else None.

    TensorFlow aborts the collectives of the survivors when its coordination service
    misses a task's heartbeats (`train.worker_timeout_seconds`) or when a peer's
    connection drops; the error names the task. Errors of one process (bad data, a
    shape) and single-worker runs give None.
    """
    tf = _tf()
    peer_errors = (
        tf.errors.UnavailableError,
        tf.errors.AbortedError,
        tf.errors.DeadlineExceededError,
        tf.errors.CancelledError,
    )
    if not isinstance(error, peer_errors) or not is_multi_worker(strategy):
        return None
    resolver = strategy.cluster_resolver
    own = (resolver.task_type, int(resolver.task_id))
    message = str(getattr(error, "message", error))
    tasks = []
    for job, task in _TASK.findall(message):
        name = f"/job:{job}/replica:0/task:{task}"
        if (job, int(task)) != own and name not in tasks:
            tasks.append(name)
    leader = _leader(resolver.cluster_spec())
    if not tasks and isinstance(error, tf.errors.DeadlineExceededError) and leader != own:
        # A survivor's heartbeats go to the coordination service's leader only: when
        # they time out and TensorFlow names no task, the leader is the one lost.
        tasks = [f"/job:{leader[0]}/replica:0/task:{leader[1]}"]
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    said = next((line for line in lines if _CAUSE.search(line)), lines[0] if lines else "")
    said = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", said)
    return WorkerLostError(tasks, checkpoint_step, f"{type(error).__name__}: {said[:240]}")


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
    worker_timeout_seconds: float | None = None,
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
        worker_timeout_seconds: for `"multiworker"`, the seconds without a heartbeat
            after which TensorFlow's coordination service declares a worker lost and
            aborts the collectives of the others (None: TensorFlow's default, 10 s).
            `kclr fit` sets it from `train.worker_timeout_seconds`.

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
        if worker_timeout_seconds is not None:
            _configure_heartbeat(worker_timeout_seconds)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu or os.environ.get("TPU_NAME") or ""
    )
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _leader(cluster: Any) -> tuple[str, int]:
    """The coordination service's leader, as TensorFlow picks it: the chief, else worker 0."""
    return ("chief", 0) if "chief" in cluster.jobs else ("worker", 0)


def _configure_heartbeat(seconds: float) -> None:
    """Configures TensorFlow's coordination service as MultiWorkerMirroredStrategy does,
    with the given heartbeat timeout.

    There is no public setting: the strategy configures the service itself (with
    TensorFlow's default timeout) only when nothing configured it before, so kclr does it
    first, through the same eager-context call, with the same leader and jobs.
    """
    from tensorflow.python.distribute import collective_all_reduce_strategy as collective
    from tensorflow.python.eager import context

    coordination_config_pb2 = collective.coordination_config_pb2  # where the strategy has it

    if not seconds > 0:
        raise ValueError(f"worker_timeout_seconds must be > 0; received {seconds!r}.")
    cluster = _tf().distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec()
    jobs = [job for job in ("chief", "worker") if job in cluster.jobs]
    if not jobs or context.context().coordination_service is not None:
        return
    job, task = _leader(cluster)
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=f"/job:{job}/replica:0/task:{task}",
        heartbeat_timeout_in_ms=int(seconds * 1000),
        coordinated_jobs=[
            coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster.num_tasks(job))
            for job in jobs
        ],
    )


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
