"""The generic model card of a zoo folder (README.md with Hugging Face Hub metadata).

`kclr.zoo.folder.format.save` writes the card that its `card` renderer returns; this one
is the default. A catalog model's card (`kclr.zoo.catalog.cards`) is passed in by the
caller, so the folder format knows nothing of the catalog.
"""

from __future__ import annotations

import json
import string
from importlib import resources
from typing import Any


def template(name: str) -> string.Template:
    """A card template of `kclr/zoo/cards/`."""
    text = resources.files("kclr.zoo").joinpath("cards", name).read_text(encoding="utf-8")
    return string.Template(text)


def _yaml_list(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items) if items else "[]"


def render_folder_card(config: dict[str, Any], metadata: dict[str, Any]) -> str:
    """Model card for a folder written by `kclr.zoo.save` (uses optional metadata fields:
    `title`, `license`, `tags`, `datasets`, `metrics` (dict name -> value), `repo`)."""
    metrics = metadata.get("metrics") or {}
    results = (
        "\n".join(f"- {k}: {v}" for k, v in metrics.items())
        if isinstance(metrics, dict) and metrics
        else "No evaluation results recorded."
    )
    tags = ["kclr", "keras", "self-supervised-learning", "contrastive-learning"]
    tags += [t for t in metadata.get("tags", []) if t not in tags]
    preprocessing = config.get("preprocessing") or {}
    head = config.get("projection_head")
    supervised = config.get("supervised_head")
    values = {
        "title": metadata.get("title") or f"kclr {config['encoder']['name']} encoder",
        "license": metadata.get("license", "apache-2.0"),
        "tags": _yaml_list(tags),
        "datasets": _yaml_list(list(metadata.get("datasets", []))),
        "metrics": _yaml_list(sorted(metrics) if isinstance(metrics, dict) else []),
        "encoder_name": config["encoder"]["name"],
        "encoder_config": json.dumps(config["encoder"]["config"], sort_keys=True),
        "feature_dim": metadata.get("feature_dim", "?"),
        "head": json.dumps(head, sort_keys=True) if head else "none",
        "supervised": json.dumps(supervised, sort_keys=True) if supervised else "none",
        "image_size": preprocessing.get("image_size", 224),
        "crop": (
            f"central crop keeping {preprocessing['crop_fraction']} of the shorter side"
            if preprocessing.get("crop_fraction")
            else "no crop"
        ),
        "results": results,
        "load_name": f"hf://{metadata['repo']}" if metadata.get("repo") else "path/to/folder",
        "weights_sha256": metadata.get("sha256", {}).get("model.weights.h5", "?"),
        "kclr_version": metadata.get("kclr_version", "?"),
    }
    return template("export_card.md").substitute(values)
