"""`kclr fit` as a Python API: build the components a config names, `fit` once, export.

`fit(config, out=RUN_DIR)` builds the encoder, projection head, loss, optimizer,
schedule and augmentation recipe from their specs (`kclr.config`), trains a
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
reduction order. A non-finite loss stops training with `NonFiniteLossError`; the
last good checkpoint is kept and nothing is exported.

Example:

```python
from kclr import config
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

from kclr.run import config as kconfig
from kclr.run import rundir
from kclr.run.plan import RunPlan, plan
from kclr.run.rundir import NonFiniteLossError, RunDirectoryError

NEIGHBOURS_MAX_EXAMPLES = 2000  # images searched for the neighbours of `rundir.NEIGHBOURS_FILE`

__all__ = ["FitResult", "NonFiniteLossError", "RunDirectoryError", "RunPlan", "fit", "plan"]


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
    seconds: float = 0.0
    trainer: Any = None


# ------------------------------------------------------------------------ components
def run_values(cfg: kconfig.Config, run: RunPlan | None = None) -> dict[str, Any]:
    """The values the run offers its components (`kclr.config.RUN_VALUES`).

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


def build_trainer(cfg: kconfig.Config, run: RunPlan, strategy):
    """A compiled `ContrastiveTrainer` under `strategy`, seeded, at the run's precision."""
    import keras

    from kclr.trainer import ContrastiveTrainer

    keras.mixed_precision.set_global_policy(run.precision)
    keras.utils.set_random_seed(run.seed)
    with strategy.scope():
        encoder, head = build_models(cfg)
        # Create every variable now (from shapes, no forward pass), so that a checkpoint
        # can be restored by name before the first step.
        head.build(encoder.output.shape)
        method = build(cfg, "method", **run_values(cfg, run))
        trainer = ContrastiveTrainer(
            encoder,
            head,
            device_augmenter=_device_augmenter(cfg),
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


def _device_augmenter(cfg: kconfig.Config):
    """The recipe's photometric stage when `data.photometric` puts it in the train step."""
    from kclr import data as kdata

    if kdata.resolve_photometric(cfg.data.photometric) != "device":
        return None
    return kdata.photometric_stage(build(cfg, "augmentation"))


def _callbacks(run: RunPlan, run_dir, work_dir, is_chief: bool, verbose: int, monitor_data):
    """The run's callbacks, in the order their docstrings ask for."""
    from kclr.trainer import callbacks as cb

    checkpoints = run_dir / rundir.CHECKPOINT_DIR
    out: list = [cb.EpochBoundaries(run.steps_per_epoch, run.total_steps)]
    if monitor_data is not None:
        knn = monitor_data["protocol"]
        out.append(
            cb.KNNMonitor(*monitor_data["data"], k=knn.k, temperature=knn.temperature,
                          every_n_epochs=run.monitor["every_n_epochs"])
        )  # fmt: skip
    out += [
        cb.NonFiniteLossGuard(checkpoints),
        cb.StepCheckpoint(checkpoints, save=is_chief, **run.checkpoint),
        cb.MetricsCSV(work_dir / rundir.METRICS_FILE),
        cb.TensorBoardScalars(work_dir / rundir.LOG_DIR),
    ]
    if verbose == 2:  # with Keras's progress bars (verbose 1) the line would repeat them
        out.append(cb.EpochLine(run.epochs))
    if is_chief:
        out.append(cb.CurvesPNG(run_dir / rundir.METRICS_FILE, run_dir / rundir.CURVES_FILE))
    return out


def _monitor_data(cfg: kconfig.Config, run: RunPlan):
    if run.monitor is None:
        return None
    from kclr.evaluation.monitor import knn_data

    data = knn_data(
        run.monitor["source"], cfg.data.image_size, run.monitor["max_examples"],
        where=run.monitor["where"],
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
        cfg: a resolved `kclr.config.Config` (`kclr.config.resolve(...)`).
        out: the run directory (default `runs/<preset>-<timestamp>`).
        resume: continue the run in `out` from its last checkpoint.
        verbose: 0 silent, 1 Keras progress bars, 2 one line per epoch.
        callbacks: extra Keras callbacks (run after kclr's).
        strategy: a `tf.distribute.Strategy` (default: from `cfg.train.strategy`).

    Returns:
        A `FitResult` (run directory, steps, history, final kNN, export path).

    Raises:
        NonFiniteLossError: the loss became NaN/Inf (the last good checkpoint is kept).
        kclr.distribute.WorkerLostError: another worker stopped answering (see
            `train.worker_timeout_seconds`); restart every worker with `resume`.
        RunDirectoryError: `out` exists without `resume`, or cannot be resumed.
    """
    from kclr import distribute, runtime
    from kclr.data import bad_files
    from kclr.run import lock as run_lock
    from kclr.trainer import preemption
    from kclr.trainer.callbacks import MetricsCSV

    started = time.time()
    strategy = strategy or distribute.get_strategy(
        cfg.train.strategy, worker_timeout_seconds=cfg.train.worker_timeout_seconds
    )
    run, source = _check(cfg, strategy)
    run_dir = pathlib.Path(out) if out is not None else rundir.default_run_dir(cfg.preset)
    is_chief = distribute.is_chief(strategy)
    if resume and is_chief and (run_dir / rundir.CONFIG_FILE).exists():
        saved = kconfig.to_dict(kconfig.from_dict(rundir.read_config(run_dir)))
        rundir.check_same_config(run_dir, saved, kconfig.to_dict(cfg))
    trainer = build_trainer(cfg, run, strategy)
    monitor_data = _monitor_data(cfg, run)
    lock = None
    if is_chief:  # checked, then held until the run ends (or the process exits)
        rundir.prepare(run_dir, resume)
        lock = run_lock.acquire(run_dir, echo=lambda line: _echo(verbose, line))
    work_dir = _work_dir(run_dir, resume, is_chief, cfg)
    cbs = _callbacks(run, run_dir, work_dir, is_chief, verbose, monitor_data)
    signals = preemption.PreemptionSignals()
    preempt = preemption.PreemptionCheckpoint(signals, _checkpoint_callback(cbs))
    cbs.append(preempt)
    start_step = _start_step(cbs, resume, verbose, run_dir)
    _echo(verbose, f"Training {cfg.preset or 'custom config'} on {cfg.data.source!r}: "
          f"{run.num_examples} examples, batch {cfg.data.global_batch_size}, "
          f"{run.steps_per_epoch} steps/epoch, {run.total_steps} steps, "
          f"{strategy.num_replicas_in_sync} replica(s). Run directory: {run_dir}")  # fmt: skip
    for note in trainer.method.unused_spec_notes(kconfig.to_dict(cfg)):  # never silently
        _echo(verbose, note)
    _echo(verbose, runtime.apply_onednn(cfg.runtime.onednn))  # chosen by `kclr fit`, or late
    if run.bad_files:
        _echo(verbose, bad_files.describe(run.bad_files))
    initial_epoch = start_step // run.steps_per_epoch
    with signals:  # SIGTERM / SIGINT: a checkpoint at the next step, then `Preempted`
        try:
            trainer.fit(  # a finished run resumes with no epoch: restore, curves, export
                _dataset(cfg, run, source, start_step, strategy),
                initial_epoch=initial_epoch,
                epochs=run.epochs if start_step < run.total_steps else initial_epoch,
                steps_per_epoch=min(run.steps_per_epoch, run.total_steps),
                callbacks=cbs + list(callbacks or []),
                verbose=1 if int(verbose) == 1 else 0,  # quiet: `EpochLine`, a line an epoch
            )
        except Exception as error:  # a lost peer aborts the collectives: name it
            lost = distribute.lost_worker(error, strategy, _saved_step(cbs))
            if lost is None:
                raise
            if lock is not None:
                lock.release()
            raise lost from None
    if preempt.preempted is not None:
        if lock is not None:
            lock.release()
        raise preempt.preempted
    history = next(c for c in cbs if isinstance(c, MetricsCSV)).history
    step = int(trainer.optimizer.iterations.numpy())
    result = FitResult(run_dir, step, run.epochs, history, trainer=trainer)
    if is_chief:
        _finish(cfg, run, result, monitor_data, verbose)
        result.neighbours = _neighbours(cfg, run, result, source, verbose)
        lock.release()
    result.seconds = time.time() - started
    return result


def _check(cfg: kconfig.Config, strategy):
    """Resolves the training data and checks the batch; returns the `RunPlan` and source."""
    from kclr import data as kdata
    from kclr import distribute
    from kclr.data import bad_files

    if cfg.data.source is None:
        raise kconfig.ConfigError(
            "No training data: `data.source` is not set. Pass `--data SOURCE` (a folder, "
            "TFRecord shards, 'tfds:NAME' or 'demo'), or `--set data.source=...`."
        )
    source = kdata.resolve_source(cfg.data.source, "train")
    bad = bad_files.check_fraction(source, cfg.data.max_bad_fraction)
    num_examples = cfg.data.num_examples or kdata.num_examples(source)
    per_replica = distribute.check_global_batch_size(
        cfg.data.global_batch_size, strategy, num_examples=num_examples, source=cfg.data.source
    )
    if cfg.train.gradient_cache_chunk_size is not None:
        from kclr.trainer.gradient_cache import num_chunks

        num_chunks(per_replica, cfg.train.gradient_cache_chunk_size)
    run = plan(cfg, num_examples)
    run.bad_files = bad if bad["count"] else None
    return run, source


def _work_dir(run_dir: pathlib.Path, resume: bool, is_chief: bool, cfg) -> pathlib.Path:
    """The chief's run directory (prepared, config written) or a worker's scratch folder.

    Other workers read the chief's checkpoints (the run directory must be on a shared
    filesystem to resume) and write their logs to a scratch folder.
    """
    if not is_chief:
        import tempfile

        return pathlib.Path(tempfile.mkdtemp(prefix="kclr-worker-"))
    rundir.prepare(run_dir, resume)
    rundir.write_config(run_dir, kconfig.to_dict(cfg))
    return run_dir


def _checkpoint_callback(cbs: list):
    from kclr.trainer.callbacks import StepCheckpoint

    return next(c for c in cbs if isinstance(c, StepCheckpoint))


def _saved_step(cbs: list) -> int | None:
    """The step of the newest checkpoint on disk (None: none yet)."""
    try:
        info = _checkpoint_callback(cbs).latest()
    except (OSError, ValueError):  # only for the message: an unreadable latest.json says none
        return None
    return None if info is None else int(info["step"])


def _start_step(cbs: list, resume: bool, verbose: int, run_dir: pathlib.Path) -> int:
    """The step the checkpoint callback will restore (0 for a new run)."""
    checkpoint = _checkpoint_callback(cbs)
    info = checkpoint.latest() if resume else None
    if info is None:
        if resume:
            _echo(verbose, f"No checkpoint in {run_dir}; starting from step 0.")
        return 0
    _echo(verbose, f"Resuming {run_dir} from {info['file']} (step {info['step']}).")
    return int(info["step"])


def _dataset(cfg: kconfig.Config, run: RunPlan, source, start_step: int, strategy):
    """The run's stream of pretraining batches from global step `start_step` on."""
    from kclr import data as kdata
    from kclr import distribute

    distributed = strategy.num_replicas_in_sync > 1 or distribute.is_multi_worker(strategy)
    return kdata.pretraining_dataset(
        source,
        recipe=build(cfg, "augmentation"),
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
    if run.bad_files:
        results["bad_files"] = run.bad_files
    _write_results(result.run_dir, results)


def _neighbours(cfg: kconfig.Config, run: RunPlan, result: FitResult, source, verbose):
    """Writes the final encoder's nearest-neighbour grid (chief only); returns its path.

    The images are a sample of at most `NEIGHBOURS_MAX_EXAMPLES` of the kNN monitor's
    test split (labelled), or of the training data when the run has no monitor.
    """
    from kclr.evaluation.neighbours import write_neighbours

    data, split = (run.monitor["source"], "test") if run.monitor else (source, "train")
    try:
        info = write_neighbours(
            result.trainer.export_encoder, data, result.run_dir / rundir.NEIGHBOURS_FILE,
            split=split, image_size=cfg.data.image_size,
            max_examples=NEIGHBOURS_MAX_EXAMPLES, seed=int(run.seed),
            title=f"{cfg.preset or 'custom config'} after {result.steps} steps",
        )  # fmt: skip
    except (ValueError, OSError) as error:  # e.g. fewer images than the grid needs
        _echo(verbose, f"No {rundir.NEIGHBOURS_FILE}: {error}")
        return None
    return info["grid"]


def _write_results(run_dir: pathlib.Path, results: dict) -> None:
    rundir.atomic_write(
        run_dir / rundir.RESULTS_FILE, (json.dumps(results, indent=2) + "\n").encode()
    )


def _echo(verbose: int, message: str) -> None:
    if verbose:
        print(message, flush=True)
