"""Where run configurations come from: presets, YAML/JSON files and `--set` overrides.

`resolve` merges its sources (`kclr.run.config.merge`) and validates the result
(`kclr.run.config.from_dict`); `kclr.config` re-exports these helpers.
"""

from __future__ import annotations

import copy
import json
import pathlib
import typing
from typing import Any

from kclr.run.config import (
    COMPONENTS,
    Config,
    ConfigError,
    from_dict,
    merge,
    section_types,
    suggest,
    valid_keys,
)


def parse_override(text: str) -> dict[str, Any]:
    """Parses one `section.key=value` override into a nested dictionary.

    The value is read as YAML, so `0.5`, `true`, `null`, `[1, 2]` and
    `{color_jitter_strength: 0.5}` have their natural types; quote a string
    that would otherwise parse as a number.
    """
    import yaml

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"Invalid override {text!r}: expected `section.key=value`, "
            "e.g. `--set optimizer.config.momentum=0.95`."
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"Invalid value in override {text!r}: {error}") from None
    parts = key.split(".")
    if len(parts) == 1 and (parts[0] in ("preset", "description") or parts[0] in COMPONENTS):
        return {parts[0]: value}  # e.g. `--set optimizer={name: sgd, config: {momentum: 0.9}}`
    if len(parts) < 2:
        raise ConfigError(
            f"Invalid override key {key!r}: expected `section.key` with a section among "
            f"{[k for k in section_types(Config) if k not in ('preset', 'description')]}."
            f"{suggest(key, valid_keys())}"
        )
    nested: dict[str, Any] = {}
    cursor = nested
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return nested


def load_file(path: str | pathlib.Path) -> dict[str, Any]:
    """Reads a (partial) configuration from a `.yaml`, `.yml` or `.json` file."""
    import yaml

    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"Configuration file not found: {str(path)!r}.")
    text = path.read_text()
    try:
        if path.suffix == ".json":
            values = json.loads(text)
        else:
            values = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"Could not parse configuration file {str(path)!r}: {error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"Configuration file {str(path)!r} must hold a mapping of sections, "
            f"received {type(values).__name__}."
        )
    return values


def resolve(
    preset: str | None = None,
    files: typing.Sequence[str | pathlib.Path] = (),
    overrides: typing.Sequence[str] = (),
    values: dict[str, Any] | None = None,
) -> Config:
    """Resolves a preset, config files, a dictionary and `key=value` overrides into a `Config`.

    Later sources win: preset < files (in order) < `values` < overrides.

    Args:
        preset: a preset name from `kclr.presets.names()`, or None for the defaults.
        files: YAML/JSON files with partial configurations.
        overrides: strings like `"optimizer.config.momentum=0.95"`.
        values: a partial nested dictionary.

    Returns:
        A validated `Config`.

    Example:

    ```python
    cfg = kclr.config.resolve("demo", overrides=["train.epochs=2", "loss.config.temperature=0.2"])
    ```
    """
    from kclr import compat, presets

    sources: list[dict[str, Any]] = []
    if preset is not None:
        sources.append({**presets.get(preset), "preset": preset})
    sources.extend(load_file(path) for path in files)
    if values:
        sources.append(values)
    sources.extend(parse_override(text) for text in overrides)
    merged = {k: copy.deepcopy(v.default) for k, v in COMPONENTS.items()}
    for source in sources:
        merged = merge(merged, compat.migrate_config(source))
    return from_dict(merged)
