"""`kclr zoo list|pull|convert|verify|push|publish|cache`: pretrained models and their files."""

from __future__ import annotations

import click


@click.group("zoo")
def command() -> None:
    """Pretrained SimCLR encoders: list, download, convert the authors' checkpoints, push."""


@command.command("list")
def list_models() -> None:
    """Show the catalog (name, architecture, reported top-1 and protocol, source)."""
    from kclr.zoo import catalog

    rows = [
        (
            e.name,
            e.arch_name,
            str(e.feature_dim),
            e.top1_text if e.top1 is not None else "-",
            e.top1_protocol if e.top1 is not None else "not reported",
            e.hub.get("repo") or "(converted from the authors' checkpoint)",
        )
        for e in catalog.entries()
    ]
    header = ("NAME", "ARCH", "FEATURES", "TOP-1", "PROTOCOL", "SOURCE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        click.echo("  ".join(c.ljust(widths[i]) for i, c in enumerate(row[:5])) + "  " + row[5])


@command.command("pull")
@click.argument("name")
def pull(name: str) -> None:
    """Download (and convert, if needed) NAME into the cache; prints its folder.

    NAME is a catalog name (see `kclr zoo list`), hf://owner/repo[@revision], an https URL
    of a zoo folder, or a local folder.
    """
    from kclr.zoo.sources.resolve import resolve

    try:
        folder = resolve(name)
    except (KeyError, ValueError, RuntimeError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(str(folder))


@command.command("convert")
@click.option(
    "--from",
    "source",
    required=True,
    help="TF1 checkpoint (prefix/folder), TF2 checkpoint or SavedModel folder, archive or URL.",
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
@click.option(
    "--ft-proj-selector",
    type=click.IntRange(0, 3),
    default=0,
    show_default=True,
    help="Projection-head output feeding the supervised head (1 for SimCLRv2 1%/10% fine-tuned).",
)
@click.option(
    "--reference",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="The authors' SavedModel to verify against (default: the source, if a SavedModel).",
)
@click.option("--no-verify", is_flag=True, help="Skip the comparison with the SavedModel.")
def convert(
    source: str,
    arch: str,
    out: str,
    ema: bool,
    heads: bool,
    cifar_stem: bool,
    ft_proj_selector: int,
    reference: str | None,
    no_verify: bool,
) -> None:
    """Convert an authors' SimCLR checkpoint into a kclr zoo folder.

    Non-model variables (global_step, optimizer slots, memory buffers, the EMA copy
    not selected) are skipped and listed in OUT/metadata.json.
    """
    from kclr.zoo.api import convert as run_convert
    from kclr.zoo.conversion.compare import describe

    try:
        result = run_convert(
            source,
            arch,
            out=out,
            ema=ema,
            include_heads=heads,
            cifar_stem=cifar_stem,
            ft_proj_selector=ft_proj_selector,
            verify=False if no_verify else None,
            reference=reference,
        )
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from error
    encoder, head, supervised = result
    parts = (
        ["encoder"]
        + (["projection head"] if head else [])
        + (["supervised head"] if supervised else [])
    )
    click.echo(f"Converted {', '.join(parts)} ({arch}) into {out}")
    click.echo(result.report["summary"])
    for note in result.report["notes"]:
        click.echo(note)
    if result.report["verification"]:
        click.echo(
            "Verified against the authors' SavedModel: " + describe(result.report["verification"])
        )


@command.command("verify")
@click.argument("model")
@click.option(
    "--reference",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The authors' TF2 SavedModel folder.",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder of images (default: generated images).",
)
@click.option("--image-size", type=click.IntRange(8, 1024), default=224, show_default=True)
@click.option("--count", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--tolerance", type=float, default=1e-4, show_default=True)
def verify(
    model: str, reference: str, images: str | None, image_size: int, count: int, tolerance: float
) -> None:
    """Compare MODEL with the authors' SavedModel on the same images.

    Runs `tf.saved_model.load(REFERENCE)(images, trainable=False)` and the kclr model,
    prints the largest absolute and relative differences of the features (and logits),
    and exits with status 1 when a relative difference is above --tolerance.
    """
    from kclr.zoo.api import verify

    try:
        result = verify(model, reference, images, image_size, count, tolerance)
    except (ValueError, RuntimeError, FileNotFoundError, KeyError) as error:
        raise click.ClickException(str(error)) from error
    for name, diff in result["outputs"].items():
        click.echo(
            f"{name}: max abs diff {diff['max_abs']:.3e}, max rel diff {diff['max_rel']:.3e}"
        )
    click.echo(
        f"{'PASS' if result['passed'] else 'FAIL'}: {result['images']} images of "
        f"{result['image_size']} px, tolerance {tolerance:g}"
    )
    if not result["passed"]:
        raise SystemExit(1)


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
    from kclr.zoo.publish import upload

    try:
        if out is not None:
            folder = upload.prepare_upload(source, out, repo=repo)
            click.echo(f"Upload folder written to {folder} (nothing uploaded)")
            return
        result = upload.push(source, repo, private=private)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"Pushed to https://huggingface.co/{result['repo']} at revision {result['revision']}"
    )
    click.echo(f'Load it with: kclr.zoo.load("hf://{result["repo"]}@{result["revision"]}")')


@command.command("publish")
@click.argument("names", nargs=-1, required=True)
@click.option("--org", required=True, help="Hub user or organisation; repos are ORG/<name>.")
@click.option(
    "--lock",
    type=click.Path(dir_okay=False),
    default=None,
    help="Lock file to update (default: the one the catalog reads).",
)
@click.option(
    "--reference-root",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder with the authors' SavedModels as <name>/ (default: download them).",
)
@click.option("--no-verify", is_flag=True, help="Push without comparing with the SavedModel.")
@click.option("--private", is_flag=True, help="Create private repositories.")
def publish(
    names: tuple[str, ...],
    org: str,
    lock: str | None,
    reference_root: str | None,
    no_verify: bool,
    private: bool,
) -> None:
    """Convert, verify and push catalog models NAMES to ORG/<name>; record them in the lock."""
    from kclr.zoo import catalog
    from kclr.zoo import publish as publishing

    try:
        written = publishing.publish(
            list(names), org, lock, reference_root, verify=not no_verify, private=private
        )
    except (ValueError, RuntimeError, FileNotFoundError, KeyError) as error:
        raise click.ClickException(str(error)) from error
    for name, item in written.items():
        click.echo(
            f"{name}: {item['repo']}@{item['revision']} sha256 {item['sha256']['model.weights.h5']}"
        )
    click.echo(f"Lock file: {lock or catalog.hub_lock_path()}")


@command.group("cache")
def cache() -> None:
    """List or clear kclr's cache of converted models and downloads."""


@cache.command("list")
def cache_list() -> None:
    """Show cached models and downloads with their sizes."""
    from kclr.zoo.sources import cache as caching

    found = caching.items()
    click.echo(f"Cache: {caching.cache_dir()}")
    for item in found:
        click.echo(f"{item.kind:<9} {item.name:<40} {caching.human(item.size):>10}")
    click.echo(f"Total: {caching.human(sum(i.size for i in found))} in {len(found)} folders")


@cache.command("clear")
@click.argument("names", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Also forget the recorded sha256s.")
def cache_clear(names: tuple[str, ...], everything: bool) -> None:
    """Remove cached models and downloads (of NAMES, or all)."""
    from kclr.zoo.sources import cache as caching

    removed = caching.clear(list(names) or None, hashes=everything)
    freed = caching.human(sum(i.size for i in removed))
    click.echo(f"Removed {len(removed)} folders ({freed}).")
    if not everything:
        click.echo("The sha256 record of downloads is kept (--all forgets it).")
