"""The `kclr` command line.

Each command lives in its own module of this package and exposes a click object
named `command`; the module name (underscores become hyphens) is the command
name. Adding a command is adding one module. Modules are imported only when their
command runs or when `--help` lists it, and they import TensorFlow inside their
function bodies only, so `kclr --help` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from kclr import __version__


class LazyGroup(click.Group):
    """A click group whose subcommands are the modules of a package, imported on demand."""

    def __init__(self, *args, package: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.package = package

    def _modules(self) -> dict[str, str]:
        package = importlib.import_module(self.package)
        return {
            info.name.replace("_", "-"): f"{self.package}.{info.name}"
            for info in pkgutil.iter_modules(package.__path__)
            if not info.name.startswith("_")
        }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._modules()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        module_name = self._modules().get(name)
        if module_name is None:
            return None
        module = importlib.import_module(module_name)
        return module.command


@click.group(
    cls=LazyGroup, package="kclr.cli", context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, "--version", prog_name="kclr")
@click.option(
    "-v", "--verbose", is_flag=True, help="Show TensorFlow's own log (hidden by default)."
)
def main(verbose: bool) -> None:
    """kclr: SimCLR and SupCon contrastive pretraining for Keras 3.

    Start with `kclr fit --preset demo`; `kclr presets list` shows the recipes.
    """
    if not verbose:  # before any command imports TensorFlow
        from kclr.cli._quiet import quiet_tensorflow

        quiet_tensorflow()


if __name__ == "__main__":  # pragma: no cover
    main()
