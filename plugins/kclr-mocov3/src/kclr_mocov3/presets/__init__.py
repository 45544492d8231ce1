"""The plugin's presets, one YAML file each, registered as `kclr.presets` entry points."""

from __future__ import annotations

import importlib.resources
from typing import Any


def _load(name: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(importlib.resources.files(__name__).joinpath(f"{name}.yaml").read_text())


def moco_v3_r50() -> dict[str, Any]:
    """MoCo v3 ResNet-50, 100 epochs, the authors' hyperparameters."""
    return _load("moco_v3_r50")


def moco_v3_vit_b() -> dict[str, Any]:
    """MoCo v3 ViT-B/16, 300 epochs, the authors' hyperparameters."""
    return _load("moco_v3_vit_b")


def moco_v3_demo() -> dict[str, Any]:
    """MoCo v3 on the built-in demo shapes, minutes on a CPU."""
    return _load("moco_v3_demo")
