"""`kclr zoo list|pull|convert|push`: pretrained models, conversion and Hub upload."""

from __future__ import annotations

import click


@click.group("zoo")
def command() -> None:
    """Pretrained SimCLR encoders: list, download, convert the authors' checkpoints, push."""


@command.command("list")
def list_models() -> None:
    """Show the published models (name, architecture, reported linear top-1, Hub repo)."""
    from kclr.zoo import catalog

    rows = [
        (
            e.name,
            e.arch_name,
            str(e.feature_dim),
            f"{e.linear_eval_top1:.1f}",
            e.hub.get("repo") or "(converted from the authors' checkpoint)",
        )
        for e in catalog.entries()
    ]
    header = ("NAME", "ARCH", "FEATURES", "TOP-1", "SOURCE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        click.echo("  ".join(c.ljust(widths[i]) for i, c in enumerate(row[:4])) + "  " + row[4])


@command.command("pull")
@click.argument("name")
def pull(name: str) -> None:
    """Download (and convert, if needed) NAME into the cache; prints its folder.

    NAME is a catalog name (see `kclr zoo list`) or hf://owner/repo[@revision].
    """
    from kclr.zoo import api

    try:
        folder = api.pull(name)
    except (KeyError, ValueError, RuntimeError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(str(folder))


@command.command("convert")
@click.option(
    "--from",
    "source",
    required=True,
    help="TF1 checkpoint (prefix/folder), TF2 SavedModel folder, archive or URL.",
)
@click.option("--arch", required=True, help="Architecture code, e.g. r50_1x, r50_2x, r50_1x_sk1.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output zoo folder.")
@click.option(
    "--ema/--no-ema", default=False, show_default=True, help="Use the SimCLRv2 EMA weights."
)
@click.option(
    "--heads/--no-heads",
    default=True,
    show_default=True,
    help="Also convert projection / supervised heads.",
)
@click.option(
    "--cifar-stem", is_flag=True, help="The checkpoint uses the CIFAR stem (3x3, no max-pool)."
)
def convert(source: str, arch: str, out: str, ema: bool, heads: bool, cifar_stem: bool) -> None:
    """Convert an authors' SimCLR checkpoint into a kclr zoo folder."""
    from kclr.zoo.converter import convert as run_convert

    try:
        encoder, head, supervised = run_convert(
            source, arch, out=out, ema=ema, include_heads=heads, cifar_stem=cifar_stem
        )
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from error
    parts = (
        ["encoder"]
        + (["projection head"] if head else [])
        + (["supervised head"] if supervised else [])
    )
    click.echo(f"Converted {', '.join(parts)} ({arch}) into {out}")


@command.command("push")
@click.argument("source", type=click.Path(exists=True, file_okay=False))
@click.option("--repo", required=True, help="Hub repository, owner/name.")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Only write the upload folder here (no upload).",
)
def push(source: str, repo: str, private: bool, out: str | None) -> None:
    """Upload a zoo folder or RUN_DIR (its export/) to the Hugging Face Hub."""
    from kclr.zoo import hub

    try:
        if out is not None:
            folder = hub.prepare_upload(source, out, repo=repo)
            click.echo(f"Upload folder written to {folder} (nothing uploaded)")
            return
        result = hub.push(source, repo, private=private)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"Pushed to https://huggingface.co/{result['repo']} at revision {result['revision']}"
    )
    click.echo(f'Load it with: kclr.zoo.load("hf://{result["repo"]}@{result["revision"]}")')
