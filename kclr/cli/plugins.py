"""`kclr plugins list [KIND]`: what the registries hold and where it came from."""

from __future__ import annotations

import click

KINDS = (
    "augmentations", "recipes", "encoders", "heads", "losses", "optimizers", "schedules", "protocols",
    "methods",
)  # fmt: skip


@click.group("plugins")
def command() -> None:
    """List kclr components (built-in and from plugin packages)."""


@command.command("list")
@click.argument("kind", required=False, type=click.Choice(KINDS))
def list_plugins(kind: str | None) -> None:
    """Show name, kind, origin distribution, version and description."""
    from kclr import registry

    rows = []
    for kind_name in [kind] if kind else KINDS:
        for entry in registry.REGISTRIES[kind_name].entries():
            rows.append(
                (entry.name, entry.kind, f"{entry.origin} {entry.version}", entry.description)
            )
    if rows:
        header = ("NAME", "KIND", "ORIGIN", "DESCRIPTION")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
        for row in [header, *rows]:
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:3])]
            click.echo("  ".join([*cells, row[3]]).rstrip())
    else:
        click.echo("No entries.")
    if registry.plugins_disabled():
        click.echo(f"(plugin discovery is off: {registry.DISABLE_ENV} is set)")
