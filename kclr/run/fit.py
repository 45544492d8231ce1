"""`kclr fit` as a Python API: build the components a config names, `fit` once, export.

`fit(config, out=RUN_DIR)` builds the encoder, projection head, loss, optimizer,
schedule and augmentation recipe from their specs (`kclr.run.config`), trains a
`kclr.ContrastiveTrainer` with one `fit` call whose callbacks
(`kclr.trainer.callbacks`) do the checkpoints, the NaN guard, the CSV, TensorBoard,
the kNN monitor and the curves, exports the encoder in the zoo format and draws its
nearest neighbours (`kclr.evaluation.neighbours`). The run
directory's contents are listed in `kclr.run.rundir`; the plan in `kclr.run.plan`.

Resuming (`resume=True`) restores every variable of the training state (model,
BatchNorm statistics, optimizer step and slots, loss state) by name, and the data
position: the run reads one repeated pipeline seeded by `train.seed` (reshuffled
each pass, random parameters keyed by position), so global batch `i` is the same in
every run, and a resumed run starts the pipeline at its step. A resumed run
therefore ends with the weights of an uninterrupted run, up to floating-point
reduction order. A non-finite loss stops training with
`kclr.trainer.callbacks.NonFiniteLossError`; the
last good checkpoint is kept and nothing is exported.

Example:

```python
from kclr.run import config
from kclr.run import fit

cfg = config.resolve("demo", overrides=["train.epochs=2"])
result = fit.fit(cfg, out="runs/demo")
result.run_dir, result.knn
```
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time
from typing import Any

from kclr import durable
from kclr.run import config as kconfig
from kclr.run import rundir
from kclr.run.plan import RunPlan, plan
from kclr.run.rundir import RunDirectoryError

NEIGHBOURS_MAX_EXAMPLES = 2000  # images searched for the neighbours of `rundir.NEIGHBOURS_FILE`

__all__ = ["FitResult", "RunDirectoryError", "RunPlan", "fit", "plan"]


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
    neighbours: pathlib.Path | None = None
    projector: pathlib.Path | None = None
    seconds: float = 0.0
    trainer: Any = None


# ------------------------------------------------------------------------ components
def run_values(cfg: kconfig.Config, run: RunPlan | None = None) -> dict[str, Any]:
    """The values the run offers its components (`kclr.run.config.RUN_VALUES`).

    Each component takes those it declares in its `run_arguments`.
    """
    values: dict[str, Any] = {"image_size": cfg.data.image_size}
    if run is not None:
        values.update(
            global_batch_size=cfg.data.global_batch_size, num_examples=run.num_examples,
            epochs=cfg.train.epochs, total_steps=run.total_steps,
        )  # fmt: skip
    return values


def build(cfg: kconfig.Config, section: str, **run: Any) -> Any:
    """Builds the component spec `cfg.<section>` through its registry.

    `run` holds the values the run supplies (see `run_values`); the component receives
    the ones it declares in `run_arguments`.
    """
    from kclr import registry, spec

    component = kconfig.COMPONENTS[section]
    return spec.build(
        getattr(registry, component.registry), getattr(cfg, section), section,
        run={**run_values(cfg), **run}, sources=kconfig.RUN_VALUES,
    )  # fmt: skip


def build_models(cfg: kconfig.Config):
    """The encoder and projection head of `cfg.encoder` and `cfg.projection_head`."""
    return build(cfg, "encoder"), build(cfg, "projection_head")


def build_optimizer(cfg: kconfig.Config, run: RunPlan):
    """`cfg.optimizer` with the `cfg.schedule` learning rate (sized by `run`)."""
    schedule = build(cfg, "schedule", **run_values(cfg, run))
    return build(cfg, "optimizer", learning_rate=schedule)


def build_trainer(cfg: kconfig.Config, run: RunPlan, strategy, recipe=None):
    """A compiled `ContrastiveTrainer` under `strategy`, seeded, at the run's precision.

    `recipe` is the run's built augmentation (`build(cfg, "augmentation")` when None); its
    photometric stage runs in the train step when `data.photometric` puts it there.
    """
    import keras

    from kclr import data as kdata
    from kclr.trainer import ContrastiveTrainer

    keras.mixed_precision.set_global_policy(run.precision)
    keras.utils.set_random_seed(run.seed)
    if recipe is None:
        recipe = build(cfg, "augmentation")
    on_device = kdata.resolve_photometric(cfg.data.photometric) == "device"
    with strategy.scope():
        encoder, head = build_models(cfg)
        # Create every variable now (from shapes, no forward pass), so that a checkpoint
        # can be restored by name before the first step.
        head.build(encoder.output.shape)
        method = build(cfg, "method", **run_values(cfg, run))
        trainer = ContrastiveTrainer(
            encoder,
            head,
            device_augmenter=kdata.photometric_stage(recipe) if on_device else None,
            augment_seed=run.seed,
            gradient_cache_chunk_size=run.gradient_cache_chunk_size,
            method=method,
        )
        trainer.compile(
            optimizer=build_optimizer(cfg, run),
            loss=cfg.loss if method.uses_loss else None,
            jit_compile=run.jit_compile,
        )
    return trainer


@dataclasses.dataclass
class RunCallbacks:
    """The callbacks of one run, by name; `ordered` is the list handed to Keras."""

    checkpoint: Any
    metrics: Any
    preemption: Any
    ordered: list


def _callbacks(run: RunPlan, run_dir, work_dir, is_chief: bool, verbose: int, monitor_data,
               start: dict | None, signals, health=None) -> RunCallbacks:  # fmt: skip
    """The run's callbacks, in the order their docstrings ask for."""
    from kclr.evaluation.monitor import KNNMonitor
    from kclr.trainer import callbacks as cb
    from kclr.trainer import preemption

    checkpoint = cb.StepCheckpoint(
        run_dir / rundir.CHECKPOINT_DIR, save=is_chief, restore=start, **run.checkpoint
    )
    metrics = cb.MetricsCSV(work_dir / rundir.METRICS_FILE)
    ordered: list = [cb.EpochBoundaries(run.steps_per_epoch, run.total_steps)]
    if monitor_data is not None:
        knn = monitor_data["protocol"]
        ordered.append(
            KNNMonitor(*monitor_data["data"], k=knn.k, temperature=knn.temperature,
                       every_n_epochs=run.monitor["every_n_epochs"])
        )  # fmt: skip
    if health is not None:
        ordered.append(health)
    ordered += [
        cb.NonFiniteLossGuard(run_dir / rundir.CHECKPOINT_DIR),
        checkpoint,
        metrics,
        cb.TensorBoardScalars(work_dir / rundir.LOG_DIR),
    ]
    if verbose == 2:  # with Keras's progress bars (verbose 1) the line would repeat them
        ordered.append(cb.EpochLine(run.epochs))
    if is_chief:
        ordered.append(cb.CurvesPNG(run_dir / rundir.METRICS_FILE, run_dir / rundir.CURVES_FILE))
    preempt = preemption.PreemptionCheckpoint(signals, checkpoint)
    ordered.append(preempt)
    return RunCallbacks(checkpoint, metrics, preempt, ordered)


def _monitor_data(cfg: kconfig.Config, run: RunPlan, verbose: int):
    if run.monitor is None:
        return None
    from kclr.evaluation.monitor import knn_data

    for line in run.monitor["sources"].notes:  # the held-out part; that kNN needs labels
        _echo(verbose, line)
    if run.monitor["sources"].splits is None:
        return None
    data = knn_data(
        run.monitor["source"], cfg.data.image_size, run.monitor["max_examples"],
        where=run.monitor["where"], splits=run.monitor["sources"].splits,
    )  # fmt: skip
    return {"data": data, "protocol": build(cfg, "knn")}


# ------------------------------------------------------------------------------- fit
def fit(
    cfg: kconfig.Config,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    verbose: int = 1,
    callbacks: list | None = None,
    strategy=None,
) -> FitResult:
    """Pretrains an encoder as `cfg` describes and writes a run directory.

    Everything that can be checked (config, data, batch, kNN data, component
    arguments) is checked before the run directory is touched.

    Args:
        cfg: a resolved `kclr.run.config.Config` (`kclr.run.config.resolve(...)`).
        out: the run directory (default `runs/<preset>-<timestamp>`).
        resume: continue the run in `out` from its last checkpoint.
        verbose: 0 silent, 1 Keras progress bars, 2 one line per epoch.
        callbacks: extra Keras callbacks (run after kclr's).
        strategy: a `tf.distribute.Strategy` (default: from `cfg.train.strategy`).

    Returns:
        A `FitResult` (run directory, steps, history, final kNN, export path).

    Raises:
        kclr.trainer.callbacks.NonFiniteLossError: the loss became NaN/Inf (the last good checkpoint is kept).
        kclr.distribute.WorkerLostError: another worker stopped answering (see
            `train.worker_timeout_seconds`); restart every worker with `resume`.
        RunDirectoryError: `out` exists without `resume`, or cannot be resumed.
    """
    from kclr import data as kdata
    from kclr import distribute, runtime
    from kclr.data import bad_files
    from kclr.evaluation.health import health_monitor
    from kclr.trainer import preemption

    started = time.time()
    strategy = strategy or distribute.get_strategy(
        cfg.train.strategy, worker_timeout_seconds=cfg.train.worker_timeout_seconds
    )
    run, source = _plan(cfg)
    run_dir = pathlib.Path(out) if out is not None else rundir.default_run_dir(cfg.preset)
    is_chief = distribute.is_chief(strategy)
    if resume and is_chief and (run_dir / rundir.CONFIG_FILE).exists():
        saved = kconfig.to_dict(kconfig.from_dict(rundir.read_config(run_dir)))
        rundir.check_same_config(run_dir, saved, kconfig.to_dict(cfg))
    recipe = build(cfg, "augmentation")
    kdata.check_views(recipe, cfg.data.views)
    trainer = build_trainer(cfg, run, strategy, recipe)
    # The batch rules (replicas, gradient-cache chunks, size of the data), checked once.
    trainer.check_batch(
        cfg.data.global_batch_size, num_examples=run.num_examples, source=cfg.data.source
    )
    monitor_data = _monitor_data(cfg, run, verbose)
    health = health_monitor(cfg, source, recipe, run.seed,
                            echo=lambda line: _echo(verbose, line))  # fmt: skip
    lock, work_dir = _claim(run_dir, resume, is_chief, cfg, verbose)
    start = _start(run_dir, resume, verbose)
    signals = preemption.PreemptionSignals()
    cbs = _callbacks(
        run, run_dir, work_dir, is_chief, verbose, monitor_data, start, signals, health
    )
    start_step = 0 if start is None else int(start["step"])
    _echo(verbose, f"Training {cfg.preset or 'custom config'} on {cfg.data.source!r}: "
          f"{run.num_examples} examples, batch {cfg.data.global_batch_size}, "
          f"{run.steps_per_epoch} steps/epoch, {run.total_steps} steps, "
          f"{strategy.num_replicas_in_sync} replica(s). Run directory: {run_dir}")  # fmt: skip
    for note in trainer.method.unused_spec_notes(kconfig.to_dict(cfg)):  # never silently
        _echo(verbose, note)
    _echo(verbose, runtime.cpu_path(cfg.runtime.onednn))  # chosen by `kclr fit`, or too late
    if run.bad_files:
        _echo(verbose, bad_files.describe(run.bad_files))
    initial_epoch = start_step // run.steps_per_epoch
    dataset = _dataset(cfg, run, source, recipe, start_step, strategy)
    if health is not None:  # its sample: the first images of this stream
        health.stream = dataset
    with signals:  # SIGTERM / SIGINT: a checkpoint at the next step, then `Preempted`
        try:
            trainer.fit(  # a finished run resumes with no epoch: restore, curves, export
                dataset,
                initial_epoch=initial_epoch,
                epochs=run.epochs if start_step < run.total_steps else initial_epoch,
                steps_per_epoch=min(run.steps_per_epoch, run.total_steps),
                callbacks=cbs.ordered + list(callbacks or []),
                verbose=1 if int(verbose) == 1 else 0,  # quiet: `EpochLine`, a line an epoch
            )
        except Exception as error:  # a lost peer aborts the collectives: name it
            lost = distribute.lost_worker(error, strategy, _saved_step(cbs.checkpoint))
            if lost is None:
                raise
            if lock is not None:
                lock.release()
            raise lost from None
    if cbs.preemption.preempted is not None:
        if lock is not None:
            lock.release()
        raise cbs.preemption.preempted
    step = int(trainer.optimizer.iterations.numpy())
    result = FitResult(run_dir, step, run.epochs, cbs.metrics.history, trainer=trainer)
    if is_chief:
        _finish(cfg, run, result, monitor_data, verbose)
        sample = _final_sample(cfg, run, result, source, verbose)  # encoded once for both
        if sample is not None:
            result.neighbours = _neighbours(cfg, run, result, source, verbose, sample)
            result.projector = _projector(cfg, run, result, source, verbose, sample)
        lock.release()
    result.seconds = time.time() - started
    return result


def _plan(cfg: kconfig.Config):
    """Resolves the training data, counts it and checks its unreadable files; returns the
    `RunPlan` and the source (the batch is checked by the trainer, `check_batch`)."""
    from kclr import data as kdata
    from kclr.data import bad_files
    from kclr.evaluation.monitor import data_columns, monitor_sources

    if cfg.data.source is None:
        raise kconfig.ConfigError(
            "No training data: `data.source` is not set. Pass `--data SOURCE` (a folder, "
            "TFRecord shards, 'tfds:NAME' or 'demo'), or `--set data.source=...`."
        )
    source = kdata.resolve_source(cfg.data.source, "train", **data_columns(cfg))
    bad = bad_files.check_fraction(source, cfg.data.max_bad_fraction)
    monitor = monitor_sources(cfg, source)  # a folder without a split: part held out
    source = monitor.training
    run = plan(cfg, cfg.data.num_examples or kdata.num_examples(source))
    run.bad_files = bad if bad["count"] else None
    if run.monitor is not None:
        run.monitor["sources"] = monitor
    return run, source


def _claim(run_dir: pathlib.Path, resume: bool, is_chief: bool, cfg, verbose: int):
    """The chief prepares the run directory once, locks it and writes the config; returns
    the lock (None on other workers) and the folder this worker writes its logs to.

    Other workers read the chief's checkpoints (the run directory must be on a shared
    filesystem to resume) and write their logs to a scratch folder.
    """
    if not is_chief:
        import tempfile

        return None, pathlib.Path(tempfile.mkdtemp(prefix="kclr-worker-"))
    from kclr.run import lock as run_lock

    rundir.prepare(run_dir, resume)
    lock = run_lock.acquire(run_dir, echo=lambda line: _echo(verbose, line))
    rundir.write_config(run_dir, kconfig.to_dict(cfg))
    return lock, run_dir


def _start(run_dir: pathlib.Path, resume: bool, verbose: int) -> dict | None:
    """The checkpoint a resumed run restores (read once, here), or None for a new run."""
    if not resume:
        return None
    from kclr.trainer.callbacks import read_latest

    info = read_latest(run_dir / rundir.CHECKPOINT_DIR)
    if info is None:
        _echo(verbose, f"No checkpoint in {run_dir}; starting from step 0.")
        return None
    _echo(verbose, f"Resuming {run_dir} from {info['file']} (step {info['step']}).")
    return info


def _saved_step(checkpoint) -> int | None:
    """The step of the newest checkpoint on disk (None: none yet)."""
    try:
        info = checkpoint.latest()
    except (OSError, ValueError):  # only for the message: an unreadable latest.json says none
        return None
    return None if info is None else int(info["step"])


def _dataset(cfg: kconfig.Config, run: RunPlan, source, recipe, start_step: int, strategy):
    """The run's stream of pretraining batches from global step `start_step` on."""
    from kclr import data as kdata
    from kclr import distribute

    distributed = strategy.num_replicas_in_sync > 1 or distribute.is_multi_worker(strategy)
    return kdata.pretraining_dataset(
        source,
        recipe=recipe,
        shuffle=True,
        repeat=True,
        deterministic=True,
        strategy=strategy if distributed else None,
        start_step=start_step,
        **run.dataset,
    )


def _finish(cfg: kconfig.Config, run: RunPlan, result: FitResult, monitor_data, verbose) -> None:
    """Exports the encoder and writes the final kNN table (chief only)."""
    from kclr import zoo

    curves = result.run_dir / rundir.CURVES_FILE
    result.curves = curves if curves.exists() else None
    encoder, head = result.trainer.export_encoder, result.trainer.projection_head
    if run.export:
        result.export_dir = zoo.save(
            encoder, result.run_dir / rundir.EXPORT_DIR, head=head,
            metadata={"preset": cfg.preset, "dataset": str(cfg.data.source),
                      "steps": result.steps, "epochs": run.epochs,
                      "config": kconfig.to_dict(cfg)},
            preprocessing={"image_size": cfg.data.image_size},
        )  # fmt: skip
    if monitor_data is None:
        if run.bad_files:
            _write_results(result.run_dir, {"steps": result.steps, "epochs": run.epochs,
                                            "bad_files": run.bad_files})  # fmt: skip
        return
    import keras

    from kclr.evaluation.monitor import format_knn_table, knn_table

    baseline = None
    if run.baselines:
        keras.utils.set_random_seed(run.seed)
        baseline = build(cfg, "encoder")
    result.knn = knn_table(encoder, monitor_data["data"], monitor_data["protocol"], baseline)
    _echo(verbose, format_knn_table(result.knn, monitor_data["protocol"].k))
    results = {"knn": result.knn, "steps": result.steps, "epochs": run.epochs}
    if run.monitor["sources"].holdout is not None:
        results["holdout"] = run.monitor["sources"].holdout.record()
    if run.bad_files:
        results["bad_files"] = run.bad_files
    _write_results(result.run_dir, results)


def _final_sample(cfg: kconfig.Config, run: RunPlan, result: FitResult, source, verbose):
    """The final encoder's features of the images of its pictures (neighbours grid and
    projector): a sample of at most `NEIGHBOURS_MAX_EXAMPLES` of the kNN monitor's test
    split (labelled), or of the training data when the run has no monitor. None, after a
    line saying why, when the images cannot be read (the run itself is kept)."""
    from kclr.evaluation.neighbours import sample_examples

    data, split = _sample_data(run, source)
    try:
        return sample_examples(
            result.trainer.export_encoder, data, split, cfg.data.image_size, 256,
            NEIGHBOURS_MAX_EXAMPLES, int(run.seed),
        )  # fmt: skip
    except (ValueError, OSError) as error:
        _echo(verbose, f"No {rundir.NEIGHBOURS_FILE} and no embedding projector: {error}")
        return None


def _neighbours(cfg: kconfig.Config, run: RunPlan, result: FitResult, source, verbose, sample):
    """Writes the final encoder's nearest-neighbour grid of `sample` (chief only); returns
    its path."""
    from kclr.evaluation.neighbours import write_neighbours

    data, split = _sample_data(run, source)
    try:
        info = write_neighbours(
            result.trainer.export_encoder, data, result.run_dir / rundir.NEIGHBOURS_FILE,
            split=split, image_size=cfg.data.image_size,
            max_examples=NEIGHBOURS_MAX_EXAMPLES, seed=int(run.seed),
            title=f"{cfg.preset or 'custom config'} after {result.steps} steps", sample=sample,
        )  # fmt: skip
    except (ValueError, OSError) as error:  # e.g. fewer images than the grid needs
        _echo(verbose, f"No {rundir.NEIGHBOURS_FILE}: {error}")
        return None
    return info["grid"]


def _sample_data(run: RunPlan, source):
    """`(data, split)` of the final pictures: the kNN test split, else the training data."""
    splits = run.monitor["sources"].splits if run.monitor else None
    return (splits[1], "test") if splits else (source, "train")


def _projector(cfg: kconfig.Config, run: RunPlan, result: FitResult, source, verbose, sample):
    """Writes TensorBoard's embedding projector of `sample` (the images of `neighbours.png`)
    beside the run's TensorBoard scalars (chief only); returns the folder."""
    from kclr.evaluation.projector import write_run_projector

    data, split = _sample_data(run, source)
    return write_run_projector(
        result.trainer.export_encoder, data, result.run_dir / rundir.LOG_DIR, split,
        cfg.data.image_size, NEIGHBOURS_MAX_EXAMPLES, int(run.seed),
        echo=lambda line: _echo(verbose, line), sample=sample,
    )  # fmt: skip


def _write_results(run_dir: pathlib.Path, results: dict) -> None:
    durable.atomic_write(
        run_dir / rundir.RESULTS_FILE, (json.dumps(results, indent=2) + "\n").encode()
    )


def _echo(verbose: int, message: str) -> None:
    if verbose:
        print(message, flush=True)
