"""Click options shared by the commands that build a run configuration (`fit`, `presets show`)."""

from __future__ import annotations

import click

overrides_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a key, e.g. --set optimizer.config.momentum=0.95 (repeatable).",
)
config_files_option = click.option(
    "--config",
    "config_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="YAML/JSON file with a partial configuration (repeatable).",
)
