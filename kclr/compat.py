"""Every kclr 0.1.0 form, read here and written nowhere.

Sections: 0.1.0 configs (flat keys migrated to component specs), 0.1.0 protocol
settings (old keyword names of `kclr.evaluation.evaluate_model`) and 0.1.0 zoo folders
(flat head fields in `config.json`).

# 0.1.0 configs

kclr 0.1.0 had flat sections: `model.depth`, `model.head`, `loss.temperature`,
`optimizer.learning_rate`, `data.recipe`, `eval.linear_epochs`, ... `migrate`
rewrites such a (partial) dictionary into the spec form and warns once per call with
a `FutureWarning` listing every moved key, so old config files, `--set` overrides and
scripts keep working. The full table is in CHANGELOG.md.

Example:

```python
from kclr import compat

compat.migrate_config({"optimizer": {"learning_rate": 0.5}})
# {'schedule': {'config': {'base_learning_rate': 0.5}}}   (and a FutureWarning)
```
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

from kclr.zoo.folder.files import ZooFormatError

# ------------------------------------------------------------------ 0.1.0 configs

# old dotted key -> new dotted key (None: dropped, see `_special`).
MOVES: dict[str, str] = {
    "model.encoder": "encoder.name",
    "model.depth": "encoder.config.depth",
    "model.width_multiplier": "encoder.config.width_multiplier",
    "model.cifar_stem": "encoder.config.cifar_stem",
    "model.sk_ratio": "encoder.config.sk_ratio",
    "model.head": "projection_head.config.version",
    "model.projection_dim": "projection_head.config.output_dim",
    "model.hidden_dim": "projection_head.config.hidden_dim",
    "model.ft_proj_selector": "finetune.config.ft_proj_selector",
    "loss.temperature": "loss.config.temperature",
    "loss.base_temperature": "loss.config.base_temperature",
    "optimizer.learning_rate": "schedule.config.base_learning_rate",
    "optimizer.learning_rate_scaling": "schedule.config.scaling",
    "optimizer.warmup_epochs": "schedule.config.warmup_epochs",
    "optimizer.momentum": "optimizer.config.momentum",
    "optimizer.nesterov": "optimizer.config.nesterov",
    "optimizer.weight_decay": "optimizer.config.weight_decay",
    "optimizer.eeta": "optimizer.config.eeta",
    "data.recipe": "augmentation.name",
    "data.recipe_overrides": "augmentation.config",
    "eval.knn_k": "knn.config.k",
    "eval.knn_temperature": "knn.config.temperature",
    "eval.linear_epochs": "linear_eval.config.epochs",
    "eval.linear_batch_size": "linear_eval.config.batch_size",
    "eval.linear_learning_rate": "linear_eval.config.learning_rate",
    "eval.linear_weight_decay": "linear_eval.config.weight_decay",
    "eval.finetune_epochs": "finetune.config.epochs",
    "eval.finetune_batch_size": "finetune.config.batch_size",
    "eval.finetune_learning_rate": "finetune.config.learning_rate",
    "eval.finetune_learning_rate_scaling": "finetune.config.learning_rate_scaling",
}
# 0.1.0 passed only these optimizer settings to each optimizer.
_OPTIMIZER_ARGS = {
    "lars": {"momentum", "nesterov", "weight_decay", "eeta"},
    "sgd": {"momentum", "nesterov", "weight_decay"},
    "adam": {"weight_decay"},
    "adamw": {"weight_decay"},
}


def is_old(values: dict[str, Any]) -> bool:
    """True when `values` uses any 0.1.0 key."""
    return any(_get(values, key) is not _MISSING for key in MOVES) or "model" in values


_MISSING = object()


def _get(values: dict[str, Any], dotted: str) -> Any:
    section, _, key = dotted.partition(".")
    part = values.get(section)
    if not isinstance(part, dict) or key not in part:
        return _MISSING
    if section in ("loss", "optimizer") and key == "name":
        return _MISSING
    return part[key]


def _set(values: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cursor = values
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    if isinstance(value, dict) and isinstance(cursor.get(parts[-1]), dict):
        cursor[parts[-1]].update(value)
    else:
        cursor[parts[-1]] = value


def migrate_config(values: dict[str, Any]) -> dict[str, Any]:
    """Returns `values` in the spec form (a copy); unchanged when it has no 0.1.0 key."""
    if not isinstance(values, dict) or not is_old(values):
        return values
    old = copy.deepcopy(values)
    new: dict[str, Any] = {k: v for k, v in old.items() if k not in ("model", "loss", "optimizer")}
    moved: list[str] = []
    for section in ("data", "eval"):
        if isinstance(new.get(section), dict):
            new[section] = {k: v for k, v in new[section].items() if f"{section}.{k}" not in MOVES}
    for section in ("loss", "optimizer"):
        part = old.get(section)
        if isinstance(part, dict):
            kept = {k: v for k, v in part.items() if k in ("name", "config")}
            if kept:
                new[section] = kept
    optimizer_name = (old.get("optimizer") or {}).get("name", "lars")
    for source, target in MOVES.items():
        value = _get(old, source)
        if value is _MISSING:
            continue
        key = source.split(".")[1]
        if source.startswith("optimizer.") and target.startswith("optimizer.config."):
            if key not in _OPTIMIZER_ARGS.get(optimizer_name, {key}):
                continue  # 0.1.0 did not pass it to this optimizer
            if key == "weight_decay" and optimizer_name != "lars" and not value:
                continue  # 0.1.0 passed `weight_decay or None`
        if source == "loss.base_temperature" and value is None:
            continue
        _set(new, target, value)
        moved.append(f"{source} -> {target}")
    _special(old, new, moved)
    for section in ("data", "eval"):
        if new.get(section) == {}:
            del new[section]
    warnings.warn(
        "This configuration uses kclr 0.1.0 keys, migrated to component specs: "
        + "; ".join(moved)
        + ". Write the new keys to silence this warning (see CHANGELOG.md).",
        FutureWarning,
        stacklevel=3,
    )
    return new


def _special(old: dict[str, Any], new: dict[str, Any], moved: list[str]) -> None:
    """`model.sync_bn` feeds both models; `model.depth` is an argument of "resnet" only."""
    model = old.get("model") or {}
    if "sync_bn" in model:
        _set(new, "encoder.config.sync_bn", model["sync_bn"])
        _set(new, "projection_head.config.sync_bn", model["sync_bn"])
        moved.append("model.sync_bn -> encoder.config.sync_bn, projection_head.config.sync_bn")
    encoder = new.get("encoder") or {}
    if encoder.get("name", "resnet") != "resnet":
        (encoder.get("config") or {}).pop("depth", None)


# --------------------------------------------------------- 0.1.0 protocol settings
# `evaluate_model(..., linear_batch_size=...)` of 0.1.0 -> the protocol's own argument.
PROTOCOL_SETTINGS: dict[str, str] = {"linear_batch_size": "batch_size"}


def migrate_protocol_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` with 0.1.0 keyword names replaced by today's."""
    return {PROTOCOL_SETTINGS.get(k, k): v for k, v in settings.items()}


# ----------------------------------------------------------------------------- 0.1.0 zoo folders
ZOO_FORMAT_V1 = "kclr.zoo.model/1"
"""The `format` of a zoo `config.json` written by kclr 0.1.0 (flat head fields)."""

ZOO_HEAD_KEYS_V1 = {
    "projection_head": {"version", "output_dim", "hidden_dim", "sync_bn"},
    "supervised_head": {"num_classes"},
}
"""The flat head fields kclr 0.1.0 wrote for each head of a zoo `config.json`."""


def upgrade_zoo_head(where: str, value: Any, source: str) -> Any:
    """A zoo `config.json` head entry in the spec form `{"name", "config"}`.

    A 0.1.0 flat entry (`{"version": "v2", "output_dim": 128, ...}`) is checked against
    the fields 0.1.0 wrote and converted to `{"name": where, "config": {...}}`; any other
    value is returned unchanged (the folder reader checks it as a spec).
    """
    if value is None or (isinstance(value, dict) and "name" in value):
        return value
    if not isinstance(value, dict):
        return value
    allowed = ZOO_HEAD_KEYS_V1[where]
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ZooFormatError(
            f"{source}: unknown field(s) {unknown} in {where}; allowed fields: "
            f"{sorted(allowed)}. kclr refuses configs it does not understand instead of "
            "guessing; the folder was written by a newer or a different tool."
        )
    return {"name": where, "config": dict(value)}
