"""`kclr fit`: contrastive pretraining from a preset, a config file and overrides."""

from __future__ import annotations

import click

from kclr.cli._options import config_files_option, overrides_option


@click.command("fit")
@click.option(
    "--preset",
    default=None,
    metavar="NAME",
    help="Preset to start from (see `kclr presets list`), e.g. demo, simclr_r50.",
)
@config_files_option
@click.option(
    "--data",
    default=None,
    metavar="SOURCE",
    help="Training data: a folder, TFRecord shards, 'tfds:NAME' or 'demo'.",
)
@overrides_option
@click.option(
    "--strategy",
    type=click.Choice(["auto", "default", "mirrored", "multiworker", "tpu"]),
    default=None,
    help="Distribution strategy (default: the config's, 'auto').",
)
@click.option(
    "--precision",
    type=click.Choice(["float32", "mixed_bfloat16", "mixed_float16"]),
    default=None,
    help="Numeric precision (default: the config's, float32).",
)
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(file_okay=False),
    help="Run directory (default: runs/<preset>-<timestamp>).",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars (one line per epoch).")
def command(preset, config_files, data, overrides, strategy, precision, out, resume, quiet) -> None:
    """Pretrain an encoder (SimCLR, SupCon or a plugin method) and write a run directory.

    \b
    Examples:
      kclr fit --preset demo
      kclr fit --preset simclr_r50 --data /data/imagenet --set train.epochs=100
      kclr fit --preset demo --out runs/demo --resume
      kclr fit --preset tiny --set method.name=moco_v3   (with kclr-mocov3)

    The run directory holds config.yaml, logs/ (TensorBoard), metrics.csv,
    checkpoints/, curves.png, neighbours.png and export/ (load it with kclr.zoo.load).
    Multi-worker: run the same command on every host with TF_CONFIG set.
    On SIGTERM or SIGINT a checkpoint is saved at the next step and the command exits
    with code 75; run it again with --resume to continue. When another worker is lost
    (no heartbeat for train.worker_timeout_seconds) the others exit with code 69.
    """
    from kclr import runtime
    from kclr.run import config

    values: dict = {}
    if data is not None:
        values.setdefault("data", {})["source"] = data
    if strategy is not None:
        values.setdefault("train", {})["strategy"] = strategy
    if precision is not None:
        values.setdefault("train", {})["precision"] = precision
    if preset is None and not config_files:
        raise click.UsageError("Give --preset NAME and/or --config FILE (see `kclr presets list`).")
    try:  # merged without TensorFlow: the CPU path is chosen before the components import it
        merged = config.merge_sources(preset, config_files, overrides, values)
        runtime.apply_onednn(config.onednn_setting(merged))
        cfg = config.from_dict(merged)
    except ValueError as error:
        raise click.ClickException(str(error)) from None

    from kclr.distribute import WORKER_LOST_EXIT_CODE, WorkerLostError
    from kclr.run import fit as runs
    from kclr.trainer.callbacks import NonFiniteLossError
    from kclr.trainer.preemption import PREEMPTED_EXIT_CODE, Preempted

    try:
        result = runs.fit(cfg, out=out, resume=resume, verbose=2 if quiet else 1)
    except Preempted as notice:  # one line, and an exit code a scheduler can act on
        click.echo(str(notice))
        raise SystemExit(PREEMPTED_EXIT_CODE) from None
    except WorkerLostError as error:  # the others of the run: restart all with --resume
        click.echo(f"Error: {error}", err=True)
        raise SystemExit(WORKER_LOST_EXIT_CODE) from None
    except (NonFiniteLossError, ValueError, FileNotFoundError) as error:
        # Config, run-directory, data and batch-size errors all say what to change.
        raise click.ClickException(str(error)) from None
    click.echo(f"Finished {result.steps} steps in {result.seconds:.0f}s.")
    click.echo(f"Run directory: {result.run_dir}")
    if result.curves is not None:
        click.echo(f"Training curves: {result.curves}")
    if result.neighbours is not None:
        click.echo(f"Nearest neighbours: {result.neighbours}")
    if result.export_dir is not None:
        click.echo(f"Exported encoder: {result.export_dir} (kclr.zoo.load('{result.export_dir}'))")
