"""`kclr eval linear|knn|neighbours MODEL --data SOURCE`: evaluate a frozen encoder."""

from __future__ import annotations

import click

from kclr.cli._options import config_files_option, overrides_option

_COLUMNS = ["protocol", "model", "data", "top1", "top5"]


def _usage_error(error: Exception) -> click.ClickException:
    """The error as one line for the user (a KeyError's message, not its repr)."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else error
    return click.ClickException(str(message))


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
@click.option("--epochs", type=int, default=None, help="Classifier epochs (the spec's).")
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
    from kclr.zoo.door import open_model

    options = dict(epochs=epochs, batch_size=linear_batch_size, learning_rate=learning_rate,
                   weight_decay=weight_decay, seed=seed)  # fmt: skip
    try:
        opened = open_model(model)
        spec = protocol_spec("linear_eval", opened, preset, config_files, overrides, options)
        result = evaluate_model(
            opened, data, spec, image_size=image_size, batch_size=batch_size, write=not no_write
        )
    except (ValueError, KeyError, FileNotFoundError, OSError) as error:  # KeyError: unknown model
        raise _usage_error(error) from None
    _report(result)


@command.command("knn")
@_common
@click.option("--k", "k", type=int, default=None, help="Neighbours (default: the knn protocol's).")
@click.option(
    "--temperature",
    type=float,
    default=None,
    help="Vote temperature (default: the knn protocol's).",
)
def knn(model, data, image_size, batch_size, no_write, k, temperature) -> None:
    """Weighted cosine kNN of MODEL's features (train split = memory bank), top-1/top-5."""
    from kclr.evaluation import evaluate_model

    given = {key: v for key, v in {"k": k, "temperature": temperature}.items() if v is not None}
    try:
        result = evaluate_model(
            model, data, "knn", image_size=image_size, batch_size=batch_size,
            write=not no_write, **given,
        )  # fmt: skip
    except (ValueError, KeyError, FileNotFoundError, OSError) as error:  # KeyError: unknown model
        raise _usage_error(error) from None
    _report(result)


@command.command("neighbours")
@click.argument("model")
@click.option(
    "--data",
    required=True,
    metavar="SOURCE",
    help="Images ('demo', a folder, TFRecords, 'tfds:NAME'); labels are shown when it has them.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The grid PNG to write.",
)
@click.option(
    "--queries", type=click.IntRange(min=1), default=8, show_default=True, help="Rows (queries)."
)
@click.option(
    "--neighbours",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Neighbours per query.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of sample and queries.")
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option(
    "--image-size", type=int, default=None, help="Input side (default: the model's, else 224)."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Batch size of feature extraction.",
)
@click.option(
    "--max-examples",
    type=click.IntRange(min=2),
    default=2000,
    show_default=True,
    help="Images sampled (seeded) from the split; neighbours are searched among them.",
)
@click.option(
    "--embedding-plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write a PNG of the features' first two principal components, by label.",
)
def neighbours_grid(model, data, out, queries, neighbours, seed, split, image_size, batch_size,
               max_examples, embedding_plot) -> None:  # fmt: skip
    """Write a grid PNG of random query images and their nearest neighbours in MODEL's features.

    Each row is a query (drawn with --seed) followed by its --neighbours most
    cosine-similar images of a seeded sample of at most --max-examples images of the
    split; under each image are its label and similarity, and a neighbour is framed
    green when its label is the query's, red when not.

    \b
    Example:
      kclr eval neighbours runs/demo/export --data demo --out grid.png \\
          --embedding-plot pca.png
    """
    from kclr.evaluation.neighbours import write_neighbours
    from kclr.zoo.door import open_model

    try:
        opened = open_model(model)
        size = image_size or opened.image_size or 224
        info = write_neighbours(
            opened.encoder, data, out, embedding_plot=embedding_plot, queries=queries,
            neighbours=neighbours, seed=seed, split=split, image_size=size,
            batch_size=batch_size, max_examples=max_examples, title=str(model),
        )  # fmt: skip
    except (ValueError, KeyError, RuntimeError, OSError) as error:  # KeyError: unknown model
        raise _usage_error(error) from None
    click.echo(
        f"{info['queries']} queries x {info['neighbours']} neighbours among {info['extent']}."
    )
    if info["match_rate"] is not None:
        click.echo(f"Neighbours with the query's label: {100 * info['match_rate']:.1f}%")
    click.echo(f"Neighbour grid: {info['grid']}")
    if info["embedding"] is not None:
        click.echo(f"Embedding plot: {info['embedding']}")
