"""How `kclr eval linear` and `kclr finetune` find their protocol spec.

Sources, later ones winning: the protocol's defaults, the run config saved with the
model (`LoadedModel.run_config`, from a folder written by `kclr fit`), `--preset`, `--config`
files and `--set` overrides (e.g. `--set linear_eval.config.epochs=30`), then the
command's explicit options (`--epochs 30`).
"""

from __future__ import annotations

from typing import Any


def protocol_spec(
    section: str, model, preset, config_files, overrides, options: dict[str, Any]
) -> dict[str, Any]:
    """The `section` spec (`"linear_eval"` or `"finetune"`) of `model` (a `LoadedModel`)
    with CLI `options` applied."""
    from kclr.run import config

    values: dict[str, Any] = {}
    if preset is None and not config_files:
        saved = (model.run_config or {}).get(section)
        if saved:
            values[section] = saved
    cfg = config.resolve(preset, files=config_files, values=values, overrides=overrides)
    spec = getattr(cfg, section)
    spec["config"].update({k: v for k, v in options.items() if v is not None})
    return spec
