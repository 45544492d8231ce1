"""`kclr extract MODEL --data SOURCE [--out features.npy] [--projector DIR]`: features."""

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
    default=None,
    type=click.Path(dir_okay=False),
    help="Output .npy; labels go to <out>.labels.npy, file names to <out>.filenames.txt.",
)
@click.option(
    "--projector",
    default=None,
    type=click.Path(file_okay=False),
    help="Also write TensorBoard's embedding projector files here (tensorboard --logdir DIR).",
)
@click.option(
    "--projector-max-examples",
    type=click.IntRange(min=2),
    default=2000,
    show_default=True,
    help="Images in the projector: a seeded sample when the split has more.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the projector sample."
)
@click.option(
    "--image-size", type=int, default=None, help="Input side (default: the model's, else 224)."
)
@click.option("--batch-size", type=int, default=256, show_default=True)
def command(model, data, split, out, projector, projector_max_examples, seed, image_size,
            batch_size) -> None:  # fmt: skip
    """Write MODEL's features of every image of --data (frozen encoder, BN in inference mode).

    A folder without train/ and test/ subfolders is read whole. With --projector DIR,
    a seeded sample of at most --projector-max-examples images goes to TensorBoard's
    embedding projector (features, metadata.tsv with path and label, a sprite of
    thumbnails, projector_config.pbtxt); give --out, --projector or both.

    \b
    Example:
      kclr extract runs/demo/export --data photos/ --projector runs/demo/projector
      tensorboard --logdir runs/demo/projector
    """
    if out is None and projector is None:
        raise click.UsageError("Give --out FILE.npy, --projector DIR, or both.")
    from kclr import data as kdata
    from kclr.data import holdout
    from kclr.evaluation import extract_features, save_features
    from kclr.evaluation.projector import describe, write_projector
    from kclr.zoo.door import open_model

    try:
        opened = open_model(model)
        encoder, size = opened.encoder, image_size or opened.image_size or 224
        source, note = holdout.resolve_whole(data, split)
        if note:
            click.echo(note)
        if out is not None:
            dataset = kdata.labelled_dataset(
                source, split=split, image_size=size, batch_size=batch_size, recipe="eval",
                with_filenames=True,
            )  # fmt: skip
            features = extract_features(encoder, dataset, verbose=True)
            paths = save_features(out, features)
            shape = features["features"].shape
            click.echo(f"Extracted {shape[0]} features of size {shape[1]} from {data!r} ({split}).")
            for path in paths:
                click.echo(f"  wrote {path}")
        if projector is not None:
            info = write_projector(
                encoder, source, projector, split=split, image_size=size,
                batch_size=batch_size, max_examples=projector_max_examples, seed=seed,
            )  # fmt: skip
            click.echo(describe(info, projector_max_examples, seed))
    except (ValueError, FileNotFoundError, OSError) as error:
        raise click.ClickException(str(error)) from None
    except KeyError as error:  # an unknown model name: its message, with the closest names
        raise click.ClickException(str(error.args[0])) from None
