"""What happens around the training step, one `keras.callbacks.Callback` each.

`kclr.run.fit.fit` wires these around a single `ContrastiveTrainer.fit` call; each
works alone with any Keras model trained by `fit` (the kNN monitor is
`kclr.evaluation.KNNMonitor`):

| callback | what |
|---|---|
| `EpochBoundaries` | ends Keras epochs on data-epoch boundaries (a resumed run starts mid-epoch) |
| `NonFiniteLossGuard` | stops at the first NaN/Inf loss with `NonFiniteLossError` (as `TerminateOnNaN`) |
| `StepCheckpoint` | name-keyed checkpoints every N steps and at epoch ends; restores in `on_train_begin` |
| `MetricsCSV` | one row per epoch in `metrics.csv`, rewritten atomically (as `CSVLogger`) |
| `EpochLine` | prints one line of metrics per epoch |
| `TensorBoardScalars` | epoch metrics as TensorBoard scalars (needs only TensorFlow) |
| `CurvesPNG` | plots `metrics.csv` into a PNG at the end of training |

Example:

```python
from kclr.trainer import callbacks

trainer.fit(dataset, epochs=10, steps_per_epoch=100, callbacks=[
    callbacks.NonFiniteLossGuard(),
    callbacks.StepCheckpoint("run/checkpoints", every_steps=500),
    callbacks.MetricsCSV("run/metrics.csv"),
])
```
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pathlib
import time
from typing import Any

import keras
import numpy as np

from kclr.durable import atomic_write
from kclr.trainer import checkpoint_files
from kclr.trainer.checkpoint_files import CheckpointError

LATEST = "latest.json"

__all__ = [
    "CurvesPNG",
    "EpochBoundaries",
    "EpochLine",
    "MetricsCSV",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "StepCheckpoint",
    "TensorBoardScalars",
    "plot_curves",
    "read_latest",
    "read_metrics",
    "state_variables",
    "write_metrics",
]


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


def _step(model) -> int:
    return int(model.optimizer.iterations.numpy())


def _floats(logs: dict | None) -> dict[str, float]:
    out = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(np.asarray(value).reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            continue
    return out


class EpochBoundaries(keras.callbacks.Callback):
    """Ends each Keras epoch where a pass over the data ends, and training at `total_steps`.

    With it, one `fit(initial_epoch=step // steps_per_epoch, steps_per_epoch=...)`
    call serves a run resumed mid-epoch (its first epoch is the rest of that pass)
    and a last partial epoch. Put it first in the callback list: it stops the epoch
    in `on_train_batch_end` and lets training continue in `on_epoch_end`, before
    other callbacks (e.g. `EarlyStopping`) decide to stop.

    Args:
        steps_per_epoch: optimizer steps per pass over the data.
        total_steps: the step at which training ends.
    """

    def __init__(self, steps_per_epoch: int, total_steps: int) -> None:
        super().__init__()
        self.steps_per_epoch = int(steps_per_epoch)
        self.total_steps = int(total_steps)
        self._ended_epoch = False

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        if step % self.steps_per_epoch == 0 or step >= self.total_steps:
            self._ended_epoch = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self._ended_epoch and _step(self.model) < self.total_steps:
            self.model.stop_training = False
        self._ended_epoch = False


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` at the first step whose loss is NaN or infinite.

    Like `keras.callbacks.TerminateOnNaN`, but it raises (so nothing after the bad
    step runs: no checkpoint, no export) with a message naming the step and the last
    good checkpoint in `checkpoint_dir`. Put it before `StepCheckpoint`.
    """

    def __init__(self, checkpoint_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.checkpoint_dir = None if checkpoint_dir is None else pathlib.Path(checkpoint_dir)

    def on_train_batch_end(self, batch, logs=None):
        loss = _floats(logs).get("loss")
        if loss is None or math.isfinite(loss):
            return
        where = "none was written yet"
        if self.checkpoint_dir is not None and (self.checkpoint_dir / LATEST).exists():
            last = json.loads((self.checkpoint_dir / LATEST).read_text())
            where = f"{last['file']} (step {last['step']}) in {self.checkpoint_dir}"
        raise NonFiniteLossError(
            f"The loss became NaN/Inf at step {_step(self.model)}; training stopped. The last "
            f"good checkpoint is kept: {where}. Lower the learning rate "
            "(`schedule.config.base_learning_rate`), check the data, or use "
            "`train.precision=float32`; then resume with `--resume` or start a new run."
        )


def state_variables(model) -> dict[str, Any]:
    """Every variable of a compiled model's training state, keyed by name.

    The model's weights (trainable and not: BatchNorm statistics, buffers) keyed by
    `variable.path`, the optimizer's variables (step counter, momentum, loss scale) keyed
    `optimizer/<path without the optimizer's own name>` (Keras numbers optimizer names
    within a process: `sgd`, `sgd_1`, ...). A training method's state (a momentum encoder,
    a memory queue) is part of the model's weights (`kclr.methods`), so stateful
    additions are saved without being listed.
    """
    optimizer = getattr(model, "optimizer", None)
    groups = [
        ("", model.weights),
        ("optimizer/", getattr(optimizer, "variables", None) or []),
    ]
    out: dict[str, Any] = {}
    for prefix, group in groups:
        for variable in group:
            key = variable.path
            if prefix:
                key = prefix + key.partition("/")[2] if "/" in key else prefix + key
            if key in out and out[key] is not variable:
                raise ValueError(
                    f"Two variables share the name {key!r}; checkpoints are keyed by name. "
                    "Give the layers (or the loss's variables) distinct names."
                )
            out[key] = variable
    return out


def read_latest(directory: str | os.PathLike) -> dict[str, Any] | None:
    """`latest.json` of a checkpoint folder as a dict (`file`, `step`, `epoch`), or None
    before the first save. A checkpoint whose checksum fails is passed over for the newest
    older one that verifies, with a printed note naming the bad file."""
    directory = pathlib.Path(directory)
    path = directory / LATEST
    if not path.exists():
        return None
    info = json.loads(path.read_text())
    if not (directory / info["file"]).exists():
        raise CheckpointError(
            f"{path} names {info['file']}, which is missing; the checkpoint directory was "
            "modified by hand. Restore the file or start a new run."
        )
    info, note = checkpoint_files.newest_good(directory, info)
    if note is not None:
        print(note, flush=True)
    return info


class StepCheckpoint(keras.callbacks.Callback):
    """Name-keyed checkpoints of the whole training state, in the style of `BackupAndRestore`.

    Every `every_steps` optimizer steps and at each epoch end it writes
    `ckpt-STEP.npz` (every variable of `state_variables`, keyed by its path) and
    `latest.json` naming it; both atomically, keeping the `keep` newest files. In
    `on_train_begin` (Keras has built the model from the first batch by then; the
    optimizer's slots are built from the trainable variables, no dummy step is run) it
    restores a checkpoint, matching variables by name.

    Args:
        directory: the checkpoint folder.
        every_steps: save period in optimizer steps.
        keep: how many checkpoints to keep.
        save: False on non-chief workers (they restore but never write).
        restore: what `on_train_begin` restores: True, the newest good checkpoint of
            `directory` (`read_latest`); a `read_latest` result the caller has read
            already (`kclr.run.fit` reads it once to know its start step); None, nothing.
    """

    def __init__(
        self, directory, every_steps: int = 500, keep: int = 2, save: bool = True, restore=True
    ):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.every_steps = int(every_steps)
        self.keep = max(1, int(keep))
        self.save = bool(save)
        self.restore = restore
        self.restored: dict[str, Any] | None = None

    def latest(self) -> dict[str, Any] | None:
        """The newest good checkpoint on disk now (`read_latest`)."""
        return read_latest(self.directory)

    def save_now(self) -> pathlib.Path | None:
        """Saves the current step now (e.g. on a preemption notice); returns the file written."""
        step = _step(self.model)
        self._save(step)
        return self.directory / f"ckpt-{step:09d}.npz" if self.save else None

    def on_train_begin(self, logs=None):
        info = self.latest() if self.restore is True else self.restore
        if info is None:
            return
        optimizer = self.model.optimizer
        if not optimizer.built:  # Keras builds it lazily in the first step; build it now
            with self.model.distribute_strategy.scope():
                optimizer.build(self.model.trainable_variables)
        variables = state_variables(self.model)
        with np.load(self.directory / info["file"]) as data:
            saved = set(data.files)
            missing, extra = sorted(set(variables) - saved), sorted(saved - set(variables))
            if missing or extra:
                raise CheckpointError(
                    f"Checkpoint {info['file']} does not fit this model: missing {missing[:5]}, "
                    f"unexpected {extra[:5]}. It was written by a different configuration; "
                    "resume with the run's own configuration or start a new run."
                )
            for key, variable in variables.items():
                variable.assign(data[key])
        self.restored = info

    def on_train_batch_end(self, batch, logs=None):
        step = _step(self.model)
        if step % self.every_steps == 0:
            self._save(step)

    def on_epoch_end(self, epoch, logs=None):
        self._save(_step(self.model), epoch + 1)

    def _save(self, step: int, epoch: int | None = None) -> None:
        if not self.save:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"ckpt-{step:09d}.npz"
        buffer = io.BytesIO()
        arrays = {k: keras.ops.convert_to_numpy(v) for k, v in state_variables(self.model).items()}
        np.savez(buffer, **arrays)
        checkpoint_files.write_checkpoint(self.directory, name, buffer.getvalue())
        info = {"file": name, "step": int(step), "epoch": epoch}
        atomic_write(self.directory / LATEST, json.dumps(info, indent=1).encode("utf-8"))
        for path in sorted(self.directory.glob("ckpt-*.npz"))[: -self.keep]:
            if path.name != name:
                path.unlink(missing_ok=True)
                checkpoint_files.checksum_path(path).unlink(missing_ok=True)


def write_metrics(path: pathlib.Path, history: list[dict[str, float]]) -> pathlib.Path:
    """Writes the epoch rows as CSV (columns in order of first appearance)."""
    keys: list[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys or ["epoch", "step"])
    writer.writeheader()
    for row in history:
        writer.writerow(row)
    return atomic_write(path, buffer.getvalue().encode("utf-8"))


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """Reads `metrics.csv` back as a list of dicts of floats (empty when missing)."""
    if not pathlib.Path(path).exists():
        return []
    with open(path, newline="") as handle:
        return [
            {k: float(v) for k, v in row.items() if v not in ("", None)}
            for row in csv.DictReader(handle)
        ]


class MetricsCSV(keras.callbacks.Callback):
    """One row per epoch (`epoch`, `step`, every metric) in a CSV rewritten atomically.

    On a resumed run it keeps the rows up to the restored step (put it after
    `StepCheckpoint`) and appends from there. `history` holds the rows.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self.path = pathlib.Path(path)
        self.history: list[dict[str, float]] = []

    def on_train_begin(self, logs=None):
        step = _step(self.model)
        self.history = [r for r in read_metrics(self.path) if r.get("step", 0) <= step]
        write_metrics(self.path, self.history)

    def on_epoch_end(self, epoch, logs=None):
        self.history.append({"epoch": epoch + 1, "step": _step(self.model), **_floats(logs)})
        write_metrics(self.path, self.history)


class EpochLine(keras.callbacks.Callback):
    """Prints `epoch E/N - step S - metric value - ... - seconds` after each epoch."""

    def __init__(self, total_epochs: int) -> None:
        super().__init__()
        self.total_epochs = int(total_epochs)
        self.started = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        parts = [f"{k} {v:.4g}" for k, v in _floats(logs).items()]
        print(
            f"epoch {epoch + 1}/{self.total_epochs} - step {_step(self.model)} - "
            + " - ".join(parts)
            + f" - {time.time() - self.started:.1f}s",
            flush=True,
        )


class TensorBoardScalars(keras.callbacks.Callback):
    """Writes epoch metrics as TensorBoard scalars `epoch_<name>` in `log_dir/train`.

    Uses `tf.summary.write` with the scalars plugin metadata, so it needs only
    TensorFlow (the `tensorboard` package is needed only to view them).
    """

    def __init__(self, log_dir: str | os.PathLike) -> None:
        super().__init__()
        self.log_dir = pathlib.Path(log_dir)
        self.writer = None

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        if self.writer is None:
            self.writer = tf.summary.create_file_writer(str(self.log_dir / "train"))
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        )
        step = _step(self.model)
        with self.writer.as_default():
            for key, value in _floats(logs).items():
                tf.summary.write(f"epoch_{key}", tf.constant(value), step=step, metadata=metadata)
        self.writer.flush()


class CurvesPNG(keras.callbacks.Callback):
    """At the end of training, plots every metric of `metrics_csv` into `png`."""

    def __init__(self, metrics_csv: str | os.PathLike, png: str | os.PathLike) -> None:
        super().__init__()
        self.metrics_csv = pathlib.Path(metrics_csv)
        self.png = pathlib.Path(png)

    def on_train_end(self, logs=None):
        plot_curves(self.metrics_csv, self.png)


def plot_curves(metrics_csv: str | os.PathLike, png: str | os.PathLike) -> pathlib.Path:
    """Plots every metric of `metrics.csv` against the epoch into a PNG (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_csv)
    keys = [k for k in (rows[0] if rows else {}) if k not in ("epoch", "step")]
    cols = max(1, min(3, len(keys)))
    nrows = max(1, math.ceil(len(keys) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
    for ax, key in zip(axes.ravel(), keys, strict=False):
        ax.set_visible(True)
        ax.plot(epochs, [r.get(key, float("nan")) for r in rows], marker="o", markersize=3)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(png, buffer.getvalue())
