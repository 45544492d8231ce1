"""`kclr presets list` and `kclr presets show NAME`: the built-in training recipes."""

from __future__ import annotations

import click

from kclr.cli._options import config_files_option, overrides_option


@click.group("presets")
def command() -> None:
    """List the training presets or show one, fully resolved."""


@command.command("list")
def list_presets() -> None:
    """Show every preset with its one-line description."""
    from kclr import presets

    names = presets.names()
    width = max(len(n) for n in names)
    for name in names:
        click.echo(f"{name.ljust(width)}  {presets.describe(name)}")


@command.command("show")
@click.argument("name")
@overrides_option
@config_files_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Output format.",
)
def show(name: str, overrides: tuple[str, ...], config_files: tuple[str, ...], fmt: str) -> None:
    """Print preset NAME as a fully resolved configuration (defaults + preset + overrides)."""
    import json

    from kclr.run import config

    try:
        cfg = config.resolve(name, files=config_files, overrides=overrides)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    values = config.to_dict(cfg)
    if fmt == "json":
        click.echo(json.dumps(values, indent=2))
    else:
        click.echo(_recipe_yaml(values, config.COMPONENTS))


def _recipe_yaml(values: dict, components) -> str:
    """YAML with each component's `config` on one line (`config: {momentum: 0.9, ...}`)."""
    import yaml

    class Flow(dict):
        pass

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(
        Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)
    )
    values = {
        key: {**value, "config": Flow(value["config"])} if key in components else value
        for key, value in values.items()
    }
    return yaml.dump(values, Dumper=Dumper, sort_keys=False, width=100).rstrip()
