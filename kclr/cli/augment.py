"""`kclr augment`: look at what an augmentation recipe does to an image."""

from __future__ import annotations

import pathlib

import click


@click.group("augment")
def command() -> None:
    """Augmentation tools (preview a recipe on an image)."""


@command.command("preview")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path))
@click.option(
    "--recipe",
    default="simclr",
    show_default=True,
    help="A registered recipe (simclr, simclr_cifar, supcon_cifar, finetune, eval or a "
    "plugin's: `kclr plugins list recipes`), or a recipe spec in JSON: "
    '\'{"name": "simclr", "config": {"blur": false}}\'.',
)
@click.option("--views", type=click.IntRange(1, 256), default=8, show_default=True)
@click.option("--image-size", type=click.IntRange(8, 1024), default=224, show_default=True)
@click.option("--columns", type=click.IntRange(1, 64), default=None, help="Grid columns.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=pathlib.Path),
    default=pathlib.Path("augment_preview.png"),
    show_default=True,
    help="PNG file to write.",
)
@click.option("--overwrite/--no-overwrite", default=False, help="Replace an existing --out.")
def preview(image, recipe, views, image_size, columns, seed, out, overwrite) -> None:
    """Write a PNG grid of VIEWS augmented views of IMAGE (the original first)."""
    if out.exists() and not overwrite:
        raise click.UsageError(
            f"{out} already exists; pass --overwrite to replace it or choose another --out."
        )
    if out.suffix.lower() != ".png":
        raise click.UsageError(f"--out must be a .png file; received {out}.")
    import tensorflow as tf

    from kclr import registry, spec
    from kclr.augment.preview import preview_grid

    recipe = _recipe_spec(recipe)
    try:
        recipe = spec.check(registry.recipes, recipe, "recipe", supplied=("image_size",))
        grid = preview_grid(image, recipe=recipe, views=views, image_size=image_size,
                            columns=columns, seed=seed)  # fmt: skip
    except ValueError as error:  # the spec, or a value the recipe's layers refuse
        raise click.BadParameter(str(error), param_hint="'--recipe'") from None
    except tf.errors.InvalidArgumentError as error:
        raise click.ClickException(
            f"Could not decode {image} as an image ({error.message.splitlines()[0]}). "
            "Pass a JPEG, PNG, GIF or BMP file."
        ) from error
    out.parent.mkdir(parents=True, exist_ok=True)
    tf.io.write_file(str(out), tf.io.encode_png(grid))
    click.echo(
        f"Wrote {views} {recipe['name']} views of {image} to {out} "
        f"({grid.shape[1]}x{grid.shape[0]})."
    )


def _recipe_spec(text: str):
    """`--recipe`: a registered name, or a JSON spec `{"name": ..., "config": {...}}`."""
    if not text.lstrip().startswith("{"):
        return text
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise click.BadParameter(
            f"{text!r} is not valid JSON ({error.msg} at column {error.colno}). Write the "
            'spec as \'{"name": "simclr", "config": {"blur": false}}\' (double quotes inside).',
            param_hint="'--recipe'",
        ) from None
