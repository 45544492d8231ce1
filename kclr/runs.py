"""Run directories and fit orchestration: what `kclr fit` does, as a Python API.

`fit(config, out=RUN_DIR)` builds the encoder, projection head, optimizer and
input pipeline described by a `kclr.config.Config`, trains a
`kclr.ContrastiveTrainer`, and leaves in `RUN_DIR`:

| path | what |
|---|---|
| `config.yaml` | the fully resolved configuration |
| `logs/` | TensorBoard event files |
| `metrics.csv` | one row of metrics per epoch |
| `checkpoints/` | step-level checkpoints (`ckpt-STEP.npz`) and `latest.json` |
| `curves.png` | training curves (matplotlib, Agg backend) |
| `export/` | the encoder + projection head in the zoo format (`kclr.zoo.load`) |
| `results.json` | final kNN results (and the baselines for the demo) |

Resuming (`resume=True`) restores the model, the optimizer (step counter,
momentum buffers, hence the learning-rate schedule) and the data position: the
run reads one repeated pipeline seeded by `train.seed` (reshuffled each pass, random
parameters keyed by position), so global batch `i` is the same in every run, and a
resumed run starts the pipeline at its step, skipping the batches before decoding.
A resumed run therefore ends with the weights of an uninterrupted run, up to
floating-point reduction order. Checkpoints are written to a temporary file and
renamed, so a killed process never leaves a truncated checkpoint.

A non-finite loss stops training at once with `NonFiniteLossError`; the last
good checkpoint is kept and nothing is exported.

Example:

```python
import kclr
from kclr import config, runs

cfg = config.resolve("demo", overrides=["train.epochs=2"])
result = runs.fit(cfg, out="runs/demo")
result.run_dir, result.knn
```
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import math
import os
import pathlib
import time
from typing import Any

import numpy as np

from kclr import config as kconfig

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
RESULTS_FILE = "results.json"
CHECKPOINT_DIR = "checkpoints"
EXPORT_DIR = "export"
LOG_DIR = "logs"
LATEST = "latest.json"


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


class RunDirectoryError(ValueError):
    """The run directory cannot be used as asked (exists without --resume, ...)."""


@dataclasses.dataclass
class FitResult:
    """What `fit` returns: where things are and the final numbers."""

    run_dir: pathlib.Path
    steps: int
    epochs: int
    history: list[dict[str, float]]
    knn: dict[str, float] | None = None
    export_dir: pathlib.Path | None = None
    curves: pathlib.Path | None = None
    seconds: float = 0.0
    trainer: Any = None


# ----------------------------------------------------------------------------- files
def _atomic_write(path: pathlib.Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_config(run_dir: pathlib.Path, cfg: kconfig.Config) -> pathlib.Path:
    """Writes the resolved config as YAML (and returns its path)."""
    import yaml

    path = run_dir / CONFIG_FILE
    text = yaml.safe_dump(kconfig.to_dict(cfg), sort_keys=False)
    _atomic_write(path, text.encode("utf-8"))
    return path


def default_run_dir(cfg: kconfig.Config, root: str = "runs") -> pathlib.Path:
    """`runs/<preset>-<UTC timestamp>`."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return pathlib.Path(root) / f"{cfg.preset or 'run'}-{stamp}"


def prepare_run_dir(run_dir: str | os.PathLike, resume: bool) -> pathlib.Path:
    """Checks and creates the run directory; never deletes anything.

    A new run needs a missing or empty directory; `resume=True` needs one written
    by an earlier `fit` (it has `config.yaml`).
    """
    run_dir = pathlib.Path(run_dir)
    has_files = run_dir.exists() and any(run_dir.iterdir())
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirectoryError(f"Run directory {str(run_dir)!r} exists and is not a directory.")
    if has_files and not resume:
        raise RunDirectoryError(
            f"Run directory {str(run_dir)!r} already holds files. Pass `--resume` to continue "
            "that run, or choose a new `--out` directory (nothing was changed)."
        )
    if resume and has_files and not (run_dir / CONFIG_FILE).exists():
        raise RunDirectoryError(
            f"Cannot resume from {str(run_dir)!r}: it has no {CONFIG_FILE}, so it is not a kclr "
            "run directory. Point `--out` at the directory of the run to resume."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


# ----------------------------------------------------------------------- checkpoints
class CheckpointStore:
    """Step-level checkpoints of a trainer and its optimizer, written atomically.

    A checkpoint is one `ckpt-STEP.npz` holding every model weight and optimizer
    variable (including the step counter `iterations`), plus `latest.json`
    naming it with the epoch and the metrics history up to that point. The
    `keep` most recent checkpoints are kept.
    """

    def __init__(self, directory: str | os.PathLike, keep: int = 2, is_chief: bool = True):
        self.directory = pathlib.Path(directory)
        self.keep = max(1, int(keep))
        self.is_chief = is_chief

    def latest(self) -> dict[str, Any] | None:
        path = self.directory / LATEST
        if not path.exists():
            return None
        info = json.loads(path.read_text())
        if not (self.directory / info["file"]).exists():
            raise RunDirectoryError(
                f"{path} names {info['file']}, which is missing; the checkpoint directory was "
                "modified by hand. Restore the file or start a new run."
            )
        return info

    def save(self, trainer, step: int, epoch: int, history: list[dict[str, float]]) -> None:
        if not self.is_chief:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"ckpt-{step:09d}.npz"
        arrays = {f"model_{i}": np.asarray(w) for i, w in enumerate(trainer.get_weights())}
        for i, variable in enumerate(trainer.optimizer.variables):
            arrays[f"optimizer_{i}"] = np.asarray(variable.numpy())
        tmp = self.directory / f".{name}.tmp{os.getpid()}"
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.directory / name)
        info = {"file": name, "step": int(step), "epoch": int(epoch), "history": history}
        _atomic_write(self.directory / LATEST, json.dumps(info, indent=1).encode("utf-8"))
        old = sorted(self.directory.glob("ckpt-*.npz"))[: -self.keep]
        for path in old:
            if path.name != name:
                path.unlink(missing_ok=True)

    def restore(self, trainer, info: dict[str, Any]) -> None:
        with np.load(self.directory / info["file"]) as data:
            model = [data[f"model_{i}"] for i in range(len(trainer.get_weights()))]
            optimizer = [data[f"optimizer_{i}"] for i in range(len(trainer.optimizer.variables))]
        trainer.set_weights(model)
        for variable, value in zip(trainer.optimizer.variables, optimizer, strict=True):
            variable.assign(value)


# ------------------------------------------------------------------------- callbacks
def _callbacks_module():
    import keras

    class StepCheckpoint(keras.callbacks.Callback):
        """Saves a checkpoint every `every` steps and at each epoch end; guards NaN."""

        def __init__(self, store: CheckpointStore, every: int, history: list, epoch_ref: dict):
            super().__init__()
            self.store = store
            self.every = int(every)
            self.history = history
            self.epoch_ref = epoch_ref
            self.bad_step: int | None = None

        def _step(self) -> int:
            return int(self.model.optimizer.iterations.numpy())

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.bad_step = self._step()
                self.model.stop_training = True
                return
            step = self._step()
            if step % self.every == 0:
                self.store.save(self.model, step, self.epoch_ref["epoch"], self.history)

        def on_epoch_end(self, epoch, logs=None):
            if self.bad_step is not None:
                return
            row = {"epoch": epoch + 1, "step": self._step()}
            for key, value in (logs or {}).items():
                try:
                    row[key] = float(value)
                except (TypeError, ValueError):
                    continue
            self.history.append(row)
            self.epoch_ref["epoch"] = epoch + 1
            self.store.save(self.model, self._step(), epoch + 1, self.history)

    class ScalarLogger(keras.callbacks.Callback):
        """Writes epoch metrics as TensorBoard scalars (`logs/train`).

        Uses `tf.summary.write` with the scalars plugin metadata, so it needs only
        TensorFlow (not the `tensorboard` package, which is only needed to view them).
        """

        def __init__(self, log_dir: pathlib.Path):
            super().__init__()
            self.log_dir = log_dir
            self.writer = None

        def on_epoch_end(self, epoch, logs=None):
            import tensorflow as tf
            from tensorflow.core.framework import summary_pb2

            if self.writer is None:
                self.writer = tf.summary.create_file_writer(str(self.log_dir / "train"))
            metadata = summary_pb2.SummaryMetadata(
                plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
            )
            step = int(self.model.optimizer.iterations.numpy())
            with self.writer.as_default():
                for key, value in (logs or {}).items():
                    try:
                        value = float(value)
                    except (TypeError, ValueError):
                        continue
                    tf.summary.write(
                        f"epoch_{key}", tf.constant(value), step=step, metadata=metadata
                    )
            self.writer.flush()

    class EpochProgbar(keras.callbacks.ProgbarLogger):
        """Keras's progress bar, titled with the run's epoch count (a resumed run's `fit`
        calls start mid-run)."""

        def __init__(self, total_epochs: int):
            super().__init__()
            self.total_epochs = int(total_epochs)

        def set_params(self, params):
            super().set_params(params)
            self.epochs = self.total_epochs

    class EpochReporter(keras.callbacks.Callback):
        """After each epoch: rewrites the metrics CSV and prints one line of metrics."""

        def __init__(self, history: list, metrics_csv: pathlib.Path, total_epochs: int, verbose):
            super().__init__()
            self.history = history
            self.metrics_csv = metrics_csv
            self.total_epochs = int(total_epochs)
            self.verbose = verbose
            self.started = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.time()

        def on_epoch_end(self, epoch, logs=None):
            if not self.history or self.history[-1]["epoch"] != epoch + 1:
                return  # stopped by the NaN guard: no row for this epoch
            _write_metrics(self.metrics_csv, self.history)
            row = self.history[-1]
            parts = [f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "step")]
            _echo(
                f"epoch {row['epoch']}/{self.total_epochs} - step {row['step']} - "
                + " - ".join(parts)
                + f" - {time.time() - self.started:.1f}s",
                self.verbose,
            )

    return StepCheckpoint, ScalarLogger, EpochProgbar, EpochReporter


# ------------------------------------------------------------------------ components
def build_models(cfg: kconfig.Config):
    """The encoder and projection head described by `cfg.model`."""
    from kclr import models, registry

    m = cfg.model
    kwargs: dict[str, Any] = dict(
        width_multiplier=m.width_multiplier,
        cifar_stem=m.cifar_stem,
        sk_ratio=m.sk_ratio,
        sync_bn=m.sync_bn,
    )
    if m.encoder == "resnet":
        kwargs["depth"] = m.depth
    if m.encoder not in registry.encoders:
        raise kconfig.ConfigError(
            f"Unknown encoder `model.encoder={m.encoder!r}`. Registered encoders: "
            f"{', '.join(registry.encoders.names())}."
        )
    encoder = registry.encoders.get(m.encoder, **kwargs)
    head = models.ProjectionHead(
        version=m.head, output_dim=m.projection_dim, hidden_dim=m.hidden_dim, sync_bn=m.sync_bn
    )
    return encoder, head


def build_optimizer(cfg: kconfig.Config, num_examples: int, total_steps: int):
    """The optimizer of `cfg.optimizer` with SimCLR's warmup + cosine schedule."""
    import keras

    from kclr import optimizers, registry

    o = cfg.optimizer
    schedule = optimizers.WarmupCosineDecay(
        o.learning_rate,
        cfg.data.global_batch_size,
        num_examples,
        epochs=cfg.train.epochs,
        warmup_epochs=o.warmup_epochs,
        scaling=o.learning_rate_scaling,
        total_steps=total_steps,
    )
    if o.name == "lars":
        return optimizers.LARS(
            schedule, momentum=o.momentum, weight_decay=o.weight_decay, eeta=o.eeta,
            nesterov=o.nesterov,
        )  # fmt: skip
    if o.name == "sgd":
        # Keras applies decoupled decay (w -= lr * wd * w): the authors add wd * l2 to
        # the loss instead; for momentum SGD the two differ only by the momentum term.
        return keras.optimizers.SGD(
            schedule, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay or None
        )
    if o.name in ("adam", "adamw"):
        cls = keras.optimizers.AdamW if o.name == "adamw" else keras.optimizers.Adam
        return cls(schedule, weight_decay=o.weight_decay or None)
    if o.name in registry.optimizers:
        return registry.optimizers.get(o.name, learning_rate=schedule)
    raise kconfig.ConfigError(
        f"Unknown optimizer `optimizer.name={o.name!r}`. Expected 'lars', 'sgd', 'adam', "
        f"'adamw' or a registered optimizer ({', '.join(registry.optimizers.names())})."
    )


def build_loss(cfg: kconfig.Config):
    """The contrastive loss of `cfg.loss`, from the loss registry."""
    from kclr import registry

    kwargs: dict[str, Any] = {"temperature": cfg.loss.temperature}
    if cfg.loss.base_temperature is not None:
        kwargs["base_temperature"] = cfg.loss.base_temperature
    if cfg.loss.name not in registry.losses:
        raise kconfig.ConfigError(
            f"Unknown loss `loss.name={cfg.loss.name!r}`. Registered losses: "
            f"{', '.join(registry.losses.names())}."
        )
    if cfg.loss.queue_size is not None:  # memory queue (issue 13)
        if cfg.loss.name != "supcon":
            raise kconfig.ConfigError(
                f"`loss.queue_size` needs `loss.name=supcon`; received loss.name="
                f"{cfg.loss.name!r}. Use supcon (without labels it is SimCLR's loss) or "
                "remove loss.queue_size."
            )
        kwargs["queue_size"] = cfg.loss.queue_size
    return registry.losses.get(cfg.loss.name, **kwargs)


def _training_dataset(cfg, source, start_step: int, strategy):
    """The run's stream of pretraining batches from global step `start_step` on.

    One repeated pipeline serves every epoch (it reshuffles each pass from its seed),
    so the augmentation graph is built once per `fit` call rather than once per epoch;
    resuming skips to `start_step` before any decoding, see `pretraining_dataset`.
    """
    from kclr import data as kdata

    distributed = strategy is not None and (
        strategy.num_replicas_in_sync > 1 or _multi_worker(strategy)
    )
    return kdata.pretraining_dataset(
        source,
        recipe=cfg.data.recipe,
        image_size=cfg.data.image_size,
        views=cfg.data.views,
        global_batch_size=cfg.data.global_batch_size,
        seed=int(cfg.train.seed),
        shuffle=True,
        repeat=True,
        deterministic=True,
        strategy=strategy if distributed else None,
        start_step=start_step,
        **cfg.data.recipe_overrides,
    )


def _multi_worker(strategy) -> bool:
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def _is_chief(strategy) -> bool:
    if strategy is None or not _multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def _knn_data(cfg: kconfig.Config, max_examples: int | None):
    """Labelled (train, test) NumPy data for the kNN monitor, or None if unavailable."""
    from kclr import data as kdata

    spec = cfg.data.eval_source or cfg.data.source
    try:
        train = kdata.resolve_source(spec, "train")
        test = kdata.resolve_source(spec, "test")
    except (ValueError, FileNotFoundError, OSError):
        return None
    if not (train.has_labels and test.has_labels):
        return None
    if train.kind != "arrays":
        size = cfg.data.image_size
        return (
            kdata.labelled_dataset(train, "train", image_size=size, batch_size=256),
            kdata.labelled_dataset(test, "test", image_size=size, batch_size=256),
        )
    rng = np.random.default_rng(0)
    images, labels = train.images, train.labels
    if max_examples and len(images) > max_examples:
        keep = np.sort(rng.choice(len(images), max_examples, replace=False))
        images, labels = images[keep], labels[keep]
    test_images = test.images
    size = cfg.data.image_size
    if images.shape[1:3] != (size, size):
        images, test_images = _resize(images, size), _resize(test_images, size)
    return (images, labels), (test_images, test.labels)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resizes uint8 images to `size` (bilinear), keeping uint8."""
    import tensorflow as tf

    out = tf.image.resize(tf.cast(images, tf.float32), (size, size), antialias=True)
    return np.clip(np.round(out.numpy()), 0, 255).astype(np.uint8)


def _set_precision(precision: str) -> None:
    import keras

    keras.mixed_precision.set_global_policy(precision)


def _echo(message: str, verbose: int) -> None:
    if verbose:
        print(message, flush=True)


def fit(
    cfg: kconfig.Config,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    verbose: int = 1,
    callbacks: list | None = None,
    strategy=None,
) -> FitResult:
    """Pretrains an encoder as `cfg` describes and writes a run directory.

    Args:
        cfg: a resolved `kclr.config.Config` (`kclr.config.resolve(...)`).
        out: the run directory (default `runs/<preset>-<timestamp>`).
        resume: continue the run in `out` from its last checkpoint.
        verbose: 0 silent, 1 progress bars + one line per epoch, 2 one line per epoch.
        callbacks: extra Keras callbacks.
        strategy: a `tf.distribute.Strategy` (default: from `cfg.train.strategy`).

    Returns:
        A `FitResult` (run directory, steps, history, final kNN, export path).

    Raises:
        NonFiniteLossError: the loss became NaN/Inf (the last good checkpoint is kept).
        RunDirectoryError: `out` exists without `resume`, or cannot be resumed.
    """
    import keras

    from kclr import data as kdata
    from kclr import distribute
    from kclr.trainer import ContrastiveTrainer

    start_time = time.time()
    if cfg.data.source is None:
        raise kconfig.ConfigError(
            "No training data: `data.source` is not set. Pass `--data SOURCE` (a folder, "
            "TFRecord shards, 'tfds:NAME' or 'demo'), or `--set data.source=...`."
        )
    if strategy is None:
        strategy = distribute.get_strategy(cfg.train.strategy)
    is_chief = _is_chief(strategy)
    # Check everything that can be checked before the run directory is touched.
    per_replica = distribute.check_global_batch_size(cfg.data.global_batch_size, strategy)
    if cfg.train.gradient_cache_chunk_size is not None:  # gradient cache (issue 13)
        from kclr.trainer.gradient_cache import num_chunks

        num_chunks(per_replica, cfg.train.gradient_cache_chunk_size)
    source = kdata.resolve_source(cfg.data.source, "train")
    num_examples = cfg.data.num_examples or kdata.num_examples(source)
    steps_per_epoch = num_examples // cfg.data.global_batch_size
    if steps_per_epoch < 1:
        raise kconfig.ConfigError(
            f"`data.global_batch_size={cfg.data.global_batch_size}` is larger than the "
            f"{num_examples} training examples of {cfg.data.source!r}: no full batch. Lower it, "
            "e.g. `--set data.global_batch_size=256`."
        )
    total_steps = cfg.train.steps or steps_per_epoch * cfg.train.epochs
    epochs = math.ceil(total_steps / steps_per_epoch)

    run_dir = pathlib.Path(out) if out is not None else default_run_dir(cfg)
    if resume and is_chief and (run_dir / CONFIG_FILE).exists():
        saved = kconfig.from_dict(_read_yaml(run_dir / CONFIG_FILE))
        if kconfig.to_dict(saved) != kconfig.to_dict(cfg):
            diff = _diff(kconfig.to_dict(saved), kconfig.to_dict(cfg))
            raise RunDirectoryError(
                f"Cannot resume {str(run_dir)!r} with a different configuration ({diff}). "
                "Resume with the same preset, data and --set options, or start a new run."
            )
    if is_chief:
        prepare_run_dir(run_dir, resume)
        write_config(run_dir, cfg)
        work_dir = run_dir
    else:
        # Other workers read the chief's checkpoints (the run directory must be on a
        # shared filesystem to resume) and write their logs to a scratch folder.
        import tempfile

        work_dir = pathlib.Path(tempfile.mkdtemp(prefix="kclr-worker-"))

    _set_precision(cfg.train.precision)
    keras.utils.set_random_seed(cfg.train.seed)
    with strategy.scope():
        encoder, head = build_models(cfg)
        trainer = ContrastiveTrainer(
            encoder,
            head,
            ft_proj_selector=cfg.model.ft_proj_selector,
            gradient_cache_chunk_size=cfg.train.gradient_cache_chunk_size,  # issue 13
        )
        optimizer = build_optimizer(cfg, num_examples, total_steps)
        trainer.compile(
            optimizer=optimizer, loss=build_loss(cfg), jit_compile=cfg.train.jit_compile
        )
        size = cfg.data.image_size
        trainer(np.zeros((1, cfg.data.views, size, size, 3), np.float32))
        trainer.optimizer.build(trainer.trainable_variables)

    store = CheckpointStore(
        run_dir / CHECKPOINT_DIR, keep=cfg.train.keep_checkpoints, is_chief=is_chief
    )
    history: list[dict[str, float]] = []
    start_step = 0
    info = store.latest() if resume else None
    if resume and info is None and not (run_dir / CHECKPOINT_DIR).exists():
        _echo(f"No checkpoint in {run_dir}; starting from step 0.", verbose)
    if info is not None:
        store.restore(trainer, info)
        start_step = int(trainer.optimizer.iterations.numpy())
        history = [row for row in info["history"] if row["epoch"] <= start_step // steps_per_epoch]
        _echo(f"Resuming {run_dir} from {info['file']} (step {start_step}).", verbose)
    _write_metrics(work_dir / METRICS_FILE, history)

    checkpoint_cls, logger_cls, progbar_cls, reporter_cls = _callbacks_module()
    epoch_ref = {"epoch": start_step // steps_per_epoch}
    saver = checkpoint_cls(store, cfg.train.checkpoint_every_steps, history, epoch_ref)
    cbs: list = []
    knn_data = None
    if cfg.eval.monitor:
        knn_data = _knn_data(cfg, cfg.eval.monitor_max_examples)
        if knn_data is not None:
            from kclr.evaluation import KNNMonitor

            cbs.append(
                KNNMonitor(
                    knn_data[0],
                    knn_data[1],
                    k=cfg.eval.knn_k,
                    temperature=cfg.eval.knn_temperature,
                    every_n_epochs=cfg.eval.monitor_every_epochs,
                )  # fmt: skip
            )
    cbs.append(saver)
    cbs.append(logger_cls(work_dir / LOG_DIR))
    cbs.append(progbar_cls(epochs))
    cbs.append(reporter_cls(history, work_dir / METRICS_FILE, epochs, verbose))
    cbs.extend(callbacks or [])
    keras_verbose = {0: 0, 1: 1, 2: 2}.get(int(verbose), 1)

    _echo(
        f"Training {cfg.preset or 'custom config'} on {cfg.data.source!r}: {num_examples} "
        f"examples, batch {cfg.data.global_batch_size}, {steps_per_epoch} steps/epoch, "
        f"{total_steps} steps, {strategy.num_replicas_in_sync} replica(s). Run directory: "
        f"{run_dir}",
        verbose,
    )
    step = start_step
    while step < total_steps:
        # One `fit` call per stretch of whole epochs (a resumed partial epoch and a
        # partial last epoch get their own), all fed from one repeated pipeline.
        epoch, offset = divmod(step, steps_per_epoch)
        whole_epochs_end = total_steps // steps_per_epoch
        if offset == 0 and epoch < whole_epochs_end:
            last_epoch, steps_now = whole_epochs_end, steps_per_epoch
        else:
            last_epoch = epoch + 1
            steps_now = min(steps_per_epoch - offset, total_steps - step)
        trainer.fit(
            _training_dataset(cfg, source, step, strategy),
            initial_epoch=epoch,
            epochs=last_epoch,
            steps_per_epoch=steps_now,
            callbacks=cbs,
            verbose=keras_verbose if verbose else 0,
            shuffle=False,  # the pipeline shuffles (seeded)
        )
        if saver.bad_step is not None:
            last = store.latest()
            where = f"{last['file']} (step {last['step']})" if last else "none was written yet"
            raise NonFiniteLossError(
                f"The loss became NaN/Inf at step {saver.bad_step}; training stopped. The last "
                f"good checkpoint is kept: {where} in {store.directory}. Lower "
                "`optimizer.learning_rate`, check the data, or use `train.precision=float32`; "
                "then resume with `--resume` or start a new run."
            )
        step = int(trainer.optimizer.iterations.numpy())
    trainer.stop_training = False

    result = FitResult(run_dir=run_dir, steps=step, epochs=epochs, history=history, trainer=trainer)
    if is_chief:
        result.curves = plot_curves(run_dir / METRICS_FILE, run_dir / CURVES_FILE)
        if cfg.train.export:
            from kclr import zoo

            result.export_dir = zoo.save(
                encoder,
                run_dir / EXPORT_DIR,
                head=head,
                metadata={
                    "preset": cfg.preset,
                    "dataset": str(cfg.data.source),
                    "steps": step,
                    "epochs": epochs,
                    "config": kconfig.to_dict(cfg),
                },
                preprocessing={"image_size": cfg.data.image_size},
            )
        if knn_data is not None and cfg.eval.monitor:
            result.knn = final_knn_table(cfg, encoder, knn_data, verbose=verbose)
            results = {"knn": result.knn, "steps": step, "epochs": epochs}
            _atomic_write(
                run_dir / RESULTS_FILE, (json.dumps(results, indent=2) + "\n").encode("utf-8")
            )
    result.seconds = time.time() - start_time
    return result


def final_knn_table(cfg, encoder, knn_data, verbose: int = 1) -> dict[str, float]:
    """kNN top-1 of the pretrained encoder; with `eval.baselines`, also of raw pixels
    and of a randomly initialised encoder of the same architecture."""
    import keras

    from kclr.evaluation import extract_features, knn_evaluate

    (train_data, test_data) = knn_data
    k, temperature = cfg.eval.knn_k, cfg.eval.knn_temperature

    def knn_of(model) -> float:
        a = extract_features(model, train_data)
        b = extract_features(model, test_data)
        return knn_evaluate(a["features"], a["labels"], b["features"], b["labels"], k, temperature)[
            "top1"
        ]

    table: dict[str, float] = {}
    if cfg.eval.baselines and isinstance(train_data, tuple):
        flat = lambda x: np.asarray(x, np.float32).reshape(len(x), -1) / 255.0  # noqa: E731
        table["raw_pixels"] = knn_evaluate(
            flat(train_data[0]), train_data[1], flat(test_data[0]), test_data[1], k, temperature
        )["top1"]
        keras.utils.set_random_seed(cfg.train.seed)
        random_encoder, _ = build_models(cfg)
        table["random_encoder"] = knn_of(random_encoder)
    table["pretrained_encoder"] = knn_of(encoder)
    if verbose:
        print(format_knn_table(table, k), flush=True)
    return table


def format_knn_table(table: dict[str, float], k: int) -> str:
    names = {
        "raw_pixels": "raw pixels",
        "random_encoder": "random-init encoder",
        "pretrained_encoder": "pretrained encoder",
    }
    width = max(len(names.get(key, key)) for key in table)
    lines = [f"kNN top-1 on the test split (k={k}):"]
    lines += [f"  {names.get(key, key):<{width}}  {value:6.2f}%" for key, value in table.items()]
    return "\n".join(lines)


# --------------------------------------------------------------------------- outputs
def _write_metrics(path: pathlib.Path, history: list[dict[str, float]]) -> None:
    keys: list[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    if not keys:
        keys = ["epoch", "step"]
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    for row in history:
        writer.writerow(row)
    _atomic_write(path, buffer.getvalue().encode("utf-8"))


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """Reads `metrics.csv` back as a list of dicts of floats."""
    with open(path, newline="") as handle:
        return [
            {k: float(v) for k, v in row.items() if v not in ("", None)}
            for row in csv.DictReader(handle)
        ]


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
    png = pathlib.Path(png)
    tmp = png.with_name(f".{png.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png)
    return png


def _read_yaml(path: pathlib.Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text()) or {}


def _diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> str:
    for key in sorted(set(a) | set(b)):
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            found = _diff(a[key], b[key], f"{prefix}{key}.")
            if found:
                return found
        elif a.get(key) != b.get(key):
            return f"`{prefix}{key}` was {a.get(key)!r}, now {b.get(key)!r}"
    return ""
