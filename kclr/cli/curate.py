"""`kclr curate duplicates|select`: near-duplicates and a diverse subset to label."""

from __future__ import annotations

import click


def _source_options(function):
    """MODEL and --data (or --features), and the extraction settings, shared by both commands."""
    options = [
        click.argument("model", required=False),
        click.option(
            "--data",
            metavar="SOURCE",
            help="Images: a folder (flat or class subfolders), TFRecords, 'demo', ...",
        ),  # fmt: skip
        click.option(
            "--features",
            "features_file",
            type=click.Path(dir_okay=False),
            default=None,
            help="Instead of MODEL and --data: a .npy written by `kclr extract` (with its "
            ".filenames.txt).",
        ),  # fmt: skip
        click.option(
            "--out",
            required=True,
            type=click.Path(file_okay=False),
            help="Output folder (created; its report files are replaced whole).",
        ),  # fmt: skip
        click.option(
            "--split",
            type=click.Choice(["train", "test"]),
            default="train",
            show_default=True,
            help="A folder without train/test subfolders is all 'train'.",
        ),  # fmt: skip
        click.option(
            "--image-size",
            type=int,
            default=None,
            help="Input side (default: the model's, else 224).",
        ),  # fmt: skip
        click.option("--batch-size", type=int, default=256, show_default=True),
        click.option(
            "--skip-unreadable",
            is_flag=True,
            help="Leave unreadable image files out instead of stopping.",
        ),  # fmt: skip
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _run(name: str, model, data, features_file, threshold, **settings):
    """Calls `kclr.curate.<name>` with the shared settings; errors become click errors."""
    if features_file is None and (model is None or data is None):
        raise click.UsageError("Pass MODEL and --data SOURCE, or --features FILE.npy.")
    if features_file is not None and (model is not None or data is not None):
        raise click.UsageError("Pass either MODEL and --data, or --features, not both.")
    from kclr import curate

    if threshold is None:
        threshold = curate.DEFAULT_THRESHOLD
    try:
        return getattr(curate, name)(
            features_file, model=model, data=data, threshold=threshold, **settings
        )
    except (ValueError, OSError) as error:  # CurateInputError and BudgetError are ValueErrors
        raise click.ClickException(str(error)) from None


@click.group("curate")
def command() -> None:
    """Near-duplicates and a diverse subset to label, from a model's frozen features."""


@command.command("duplicates")
@_source_options
@click.option("--threshold", type=float, default=None,
              help="Smallest cosine similarity of a pair (default: kclr.curate.DEFAULT_THRESHOLD, "
              "0.98).")  # fmt: skip
@click.option("--no-exact", is_flag=True, help="Skip the content-hash pass for identical files.")
def duplicates(model, data, features_file, out, split, image_size, batch_size, skip_unreadable,
               threshold, no_exact) -> None:  # fmt: skip
    """Write OUT/duplicates.csv, groups.csv and duplicates.png of MODEL's features of --data."""
    report = _run(
        "duplicates", model, data, features_file, threshold, out=out, exact=not no_exact,
        image_size=image_size, batch_size=batch_size, split=split,
        skip_unreadable=skip_unreadable,
    )  # fmt: skip
    click.echo(
        f"{len(report.pairs)} near-duplicate pairs ({report.exact} byte-identical) in "
        f"{len(report.groups)} groups at cosine similarity >= {report.threshold}."
    )
    for path in report.files:
        click.echo(f"  wrote {path}")


@command.command("select")
@_source_options
@click.option("--budget", type=int, required=True, help="How many images to choose.")
@click.option("--method", type=click.Choice(["typiclust", "kcenter", "random"]),
              default="typiclust", show_default=True)  # fmt: skip
@click.option("--labelled", type=click.Path(dir_okay=False), default=None,
              help="Text file of images already labelled (one path per line): choose around them.")  # fmt: skip
@click.option("--threshold", type=float, default=None,
              help="Never choose two images this cosine-similar (default 0.98).")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True)
def select(model, data, features_file, out, split, image_size, batch_size, skip_unreadable,
           budget, method, labelled, threshold, seed) -> None:  # fmt: skip
    """Write OUT/selected.txt (BUDGET paths) and selected.png: a diverse subset to label."""
    chosen = _run(
        "select", model, data, features_file, threshold, budget=budget, method=method,
        labelled=labelled, seed=seed, out=out, image_size=image_size, batch_size=batch_size,
        split=split, skip_unreadable=skip_unreadable,
    )  # fmt: skip
    click.echo(f"Selected {len(chosen.paths)} images with {chosen.method}.")
    for path in chosen.files:
        click.echo(f"  wrote {path}")
