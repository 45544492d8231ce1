"""Run configuration: component specs plus three plain sections, from presets, files and `--set`.

The public face of `kclr.run.config` (the schema: `Config`, `from_dict`, `to_dict`,
`merge`) and `kclr.run.config_sources` (`resolve`, `load_file`, `parse_override`).

See `kclr.run.config` for the sections, the defaults and an example.
"""

from kclr.run.config import (
    CHOICES,
    COMPONENTS,
    POSITIVE,
    RUN_VALUES,
    Component,
    Config,
    ConfigError,
    DataConfig,
    EvalConfig,
    TrainConfig,
    from_dict,
    merge,
    section_types,
    suggest,
    to_dict,
    valid_keys,
)
from kclr.run.config_sources import load_file, parse_override, resolve

__all__ = [
    "CHOICES",
    "COMPONENTS",
    "POSITIVE",
    "RUN_VALUES",
    "Component",
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "TrainConfig",
    "from_dict",
    "load_file",
    "merge",
    "parse_override",
    "resolve",
    "section_types",
    "suggest",
    "to_dict",
    "valid_keys",
]
