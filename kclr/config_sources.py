"""Where run configurations come from: YAML/JSON files, `--set` overrides, and how they merge.

`kclr.config.resolve` merges its sources with `merge`; these helpers are re-exported
there (`kclr.config.merge`, `kclr.config.parse_override`, `kclr.config.load_file`).
"""

from __future__ import annotations

import copy
import json
import pathlib
from typing import Any

from kclr.config import (
    COMPONENTS,
    Config,
    ConfigError,
    _section_types,
    _suggest,
    valid_keys,
)


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Merges `update` into a copy of `base`: dicts merge recursively, other values replace.

    A component section of `update` that names a different component than `base`
    replaces it whole (the old component's arguments would not fit the new one).
    """
    out = copy.deepcopy(base)
    for key, value in update.items():
        if key in COMPONENTS and isinstance(value, str):
            value = {"name": value}
        old = out.get(key)
        if (
            key in COMPONENTS
            and isinstance(value, dict)
            and isinstance(old, dict)
            and value.get("name", old.get("name")) != old.get("name")
        ):
            out[key] = {"name": value["name"], "config": copy.deepcopy(value.get("config") or {})}
        elif isinstance(value, dict) and isinstance(old, dict):
            out[key] = merge(old, value) if key not in COMPONENTS else _merge_spec(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_spec(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(old)
    for key, value in new.items():
        if key == "config" and isinstance(value, dict) and isinstance(out.get("config"), dict):
            out["config"] = {**out["config"], **copy.deepcopy(value)}
        else:
            out[key] = copy.deepcopy(value)
    return out


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
            f"{[k for k in _section_types(Config) if k not in ('preset', 'description')]}."
            f"{_suggest(key, valid_keys())}"
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
