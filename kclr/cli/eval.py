"""`kclr eval linear|knn MODEL --data SOURCE`: evaluate a frozen encoder."""

from __future__ import annotations

import click

from kclr.cli._options import config_files_option, overrides_option

_COLUMNS = ["protocol", "model", "data", "top1", "top5"]


def _common(function):
    function = click.option(
        "--data",
        required=True,
        metavar="SOURCE",
        help="Labelled data with train and test splits ('demo', a folder, ...).",
    )(function)
    function = click.option(
        "--image-size", type=int, default=None, help="Input side (default: the model's, else 224)."
    )(function)
    function = click.option(
        "--batch-size",
        type=int,
        default=256,
        show_default=True,
        help="Batch size of feature extraction.",
    )(function)
    function = click.option(
        "--no-write", is_flag=True, help="Do not write <model>.results.json next to the model."
    )(function)
    return click.argument("model")(function)


@click.group("eval")
def command() -> None:
    """Evaluate a saved encoder (frozen, BatchNorm in inference mode)."""


def _report(result: dict) -> None:
    from kclr.evaluation import format_table

    click.echo(format_table([result], _COLUMNS))
    if result.get("results_file"):
        click.echo(f"Results written to {result['results_file']}")


@command.command("linear")
@_common
@click.option("--epochs", type=int, default=None, help="Classifier epochs (spec default 90).")
@click.option("--linear-batch-size", type=int, default=None, help="Classifier batch size.")
@click.option("--learning-rate", type=float, default=None, help="Base LR, x batch/256.")
@click.option("--weight-decay", type=float, default=None, help="L2 coefficient.")
@click.option("--seed", type=int, default=None)
@click.option("--preset", default=None, help="Read `linear_eval` from this preset.")
@config_files_option
@overrides_option
def linear(model, data, image_size, batch_size, no_write, epochs, linear_batch_size,
           learning_rate, weight_decay, seed, preset, config_files, overrides) -> None:  # fmt: skip
    """Linear probe of MODEL: features cached once, SGD Nesterov + cosine, top-1/top-5.

    The settings are the `linear_eval` protocol spec: from the run config saved with
    MODEL (or --preset / --config / --set linear_eval.config.KEY=VALUE), then the options.
    """
    from kclr.cli._protocol import protocol_spec
    from kclr.evaluation import evaluate_model

    options = dict(epochs=epochs, batch_size=linear_batch_size, learning_rate=learning_rate,
                   weight_decay=weight_decay, seed=seed)  # fmt: skip
    try:
        spec = protocol_spec("linear_eval", model, preset, config_files, overrides, options)
        result = evaluate_model(
            model, data, spec, image_size=image_size, batch_size=batch_size, write=not no_write
        )
    except (ValueError, FileNotFoundError, OSError) as error:
        raise click.ClickException(str(error)) from None
    _report(result)


@command.command("knn")
@_common
@click.option("--k", "k", type=int, default=200, show_default=True, help="Neighbours.")
@click.option(
    "--temperature", type=float, default=0.07, show_default=True, help="Vote temperature."
)
def knn(model, data, image_size, batch_size, no_write, k, temperature) -> None:
    """Weighted cosine kNN of MODEL's features (train split = memory bank), top-1/top-5."""
    from kclr.evaluation import evaluate_model

    try:
        result = evaluate_model(
            model, data, "knn", image_size=image_size, batch_size=batch_size, k=k,
            temperature=temperature, write=not no_write,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, OSError) as error:
        raise click.ClickException(str(error)) from None
    _report(result)
