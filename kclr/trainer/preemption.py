"""Preemption notices (SIGTERM, SIGINT): a checkpoint at the next step boundary, then a clean stop.

A preemptible VM or a Kubernetes pod gets SIGTERM some seconds before it is killed.
`PreemptionSignals` turns SIGTERM and SIGINT into a flag (a second signal of either
kind kills the process as usual); `PreemptionCheckpoint` checks the flag after every
step, saves the training state with the run's `StepCheckpoint`, stops training and
records when. `kclr.run.fit.fit` then raises `Preempted`, and `kclr fit` prints one line
and exits with `PREEMPTED_EXIT_CODE`; `kclr fit --resume` continues from that step.

On several workers the flag is all-reduced (summed) at every step boundary, so every
worker stops after the same step, whichever worker got the notice.

Example:

```python
from kclr.trainer import preemption

with preemption.PreemptionSignals() as signals:
    trainer.fit(dataset, callbacks=[checkpoint, preemption.PreemptionCheckpoint(signals, checkpoint)])
```
"""

from __future__ import annotations

import signal
import threading
import time

import keras

__all__ = ["PREEMPTED_EXIT_CODE", "Preempted", "PreemptionCheckpoint", "PreemptionSignals"]

# EX_TEMPFAIL of sysexits.h: "temporary failure, try again". Distinct from 143 (killed by
# SIGTERM before anything was saved) and from 1 (an error): a job scheduler can restart
# the job with `--resume` on this code only.
PREEMPTED_EXIT_CODE = 75


class Preempted(RuntimeError):
    """Training stopped on a preemption signal after saving a checkpoint.

    Attributes: `signal_name`, `step` (the step saved), `checkpoint` (its path),
    `seconds` (from the signal to the checkpoint on disk: the grace period used).
    """

    def __init__(self, signal_name: str, step: int, checkpoint, seconds: float) -> None:
        self.signal_name, self.step, self.checkpoint, self.seconds = (
            signal_name, int(step), checkpoint, float(seconds),
        )  # fmt: skip
        super().__init__(
            f"Preempted by {signal_name}: checkpoint of step {self.step} saved to {checkpoint} "
            f"{self.seconds:.2f}s after the signal; continue with `kclr fit ... --resume` "
            f"(exit code {PREEMPTED_EXIT_CODE})."
        )


class PreemptionSignals:
    """A context manager that turns SIGTERM and SIGINT into a flag while it is active.

    `received` is the signal's name (or None), `received_at` its `time.monotonic()`.
    A second signal restores the previous handlers and re-delivers itself (a user who
    presses Ctrl-C twice gets the usual behaviour). Outside the main thread signal
    handlers cannot be installed, and the context does nothing.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: str | None = None
        self.received_at: float | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            self._restore()
            signal.raise_signal(signum)
            return
        self.received = signal.Signals(signum).name
        self.received_at = time.monotonic()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __enter__(self) -> PreemptionSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()


def _agreed(flag: bool, strategy) -> bool:
    """`flag` or-ed over every worker (a sum all-reduce, > 0); the flag itself on one worker."""
    from kclr import distribute

    if strategy is None or not distribute.is_multi_worker(strategy):
        return flag
    import tensorflow as tf

    value = strategy.run(lambda: tf.constant(1.0 if flag else 0.0))
    return bool(strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None).numpy() > 0)


class PreemptionCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint and stops training at the first step boundary after a signal.

    Put it after `StepCheckpoint` and after `EpochBoundaries` (it keeps training
    stopped when the signal lands on an epoch end, where `EpochBoundaries` would let it
    go on).

    Args:
        signals: the active `PreemptionSignals`.
        checkpoint: the run's `kclr.trainer.callbacks.StepCheckpoint`.

    After training, `preempted` is a `Preempted` (not raised) or None.
    """

    def __init__(self, signals: PreemptionSignals, checkpoint) -> None:
        super().__init__()
        self.signals = signals
        self.checkpoint = checkpoint
        self.preempted: Preempted | None = None

    def on_train_batch_end(self, batch, logs=None):
        if self.preempted is not None:
            return
        strategy = getattr(self.model, "distribute_strategy", None)
        if not _agreed(self.signals.received is not None, strategy):
            return
        path = self.checkpoint.save_now()
        received_at = self.signals.received_at or time.monotonic()  # another worker's signal
        self.preempted = Preempted(
            self.signals.received or "a preemption signal on another worker",
            int(self.model.optimizer.iterations.numpy()),
            path,
            time.monotonic() - received_at,
        )
        self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.preempted is not None:
            self.model.stop_training = True
