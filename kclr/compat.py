"""Reading what kclr 0.1.0 wrote. Nothing in kclr writes these forms any more."""

from __future__ import annotations

from typing import Any

from kclr.zoo.folder.files import ZooFormatError

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
