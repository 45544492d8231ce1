"""`kclr extract MODEL --data SOURCE --out features.npy`: batched feature extraction."""

from __future__ import annotations

import click


@click.command("extract")
@click.argument("model")
@click.option(
    "--data", required=True, metavar="SOURCE", help="Images: 'demo', a folder, TFRecords, ..."
)
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output .npy; labels go to <out>.labels.npy, file names to <out>.filenames.txt.",
)
@click.option(
    "--image-size", type=int, default=None, help="Input side (default: the model's, else 224)."
)
@click.option("--batch-size", type=int, default=256, show_default=True)
def command(model, data, split, out, image_size, batch_size) -> None:
    """Write MODEL's features of every image of --data (frozen encoder, BN in inference mode)."""
    from kclr import data as kdata
    from kclr.evaluation import extract_features, save_features
    from kclr.zoo.door import open_model

    try:
        opened = open_model(model)
        encoder, size = opened.encoder, image_size or opened.image_size or 224
        dataset = kdata.labelled_dataset(
            data, split=split, image_size=size, batch_size=batch_size, recipe="eval",
            with_filenames=True,
        )  # fmt: skip
        features = extract_features(encoder, dataset, verbose=True)
        paths = save_features(out, features)
    except (ValueError, FileNotFoundError, OSError) as error:
        raise click.ClickException(str(error)) from None
    except KeyError as error:  # an unknown model name: its message, with the closest names
        raise click.ClickException(str(error.args[0])) from None
    shape = features["features"].shape
    click.echo(f"Extracted {shape[0]} features of size {shape[1]} from {data!r} ({split}).")
    for path in paths:
        click.echo(f"  wrote {path}")
