"""Model cards (README.md with Hugging Face Hub metadata) for zoo folders and the catalog."""

from __future__ import annotations

import json
import string
from importlib import resources
from typing import Any

from kclr.zoo.catalog import DEFAULT_OFFICIAL_URL, CatalogEntry

_BIBTEX = {
    "https://arxiv.org/abs/2002.05709": """@inproceedings{chen2020simple,
  title={A Simple Framework for Contrastive Learning of Visual Representations},
  author={Chen, Ting and Kornblith, Simon and Norouzi, Mohammad and Hinton, Geoffrey},
  booktitle={International Conference on Machine Learning},
  year={2020}
}""",
    "https://arxiv.org/abs/2006.10029": """@inproceedings{chen2020big,
  title={Big Self-Supervised Models are Strong Semi-Supervised Learners},
  author={Chen, Ting and Kornblith, Simon and Swersky, Kevin and Norouzi, Mohammad and Hinton, Geoffrey},
  booktitle={Advances in Neural Information Processing Systems},
  year={2020}
}""",
}
_LICENSES = {
    "apache-2.0": (
        "Apache License 2.0, the license of the authors' repository "
        "(https://github.com/google-research/simclr) under which the checkpoints were released."
    )
}


def _template(name: str) -> string.Template:
    text = resources.files("kclr.zoo").joinpath("cards", name).read_text(encoding="utf-8")
    return string.Template(text)


def render_catalog_card(
    entry: CatalogEntry, weights_sha256: str | None = None, base_url: str | None = None
) -> str:
    """The model card of a catalog model (`zoo/<name>.md`, and README.md on the Hub)."""
    urls = entry.checkpoint_urls(base_url or DEFAULT_OFFICIAL_URL)
    pinned = {k: v for k, v in entry.checkpoint.get("sha256", {}).items() if v}
    hub_sha = weights_sha256 or (entry.hub.get("sha256") or {}).get("model.weights.h5")
    published = entry.hub.get("repo") is not None
    note = (
        "The Hub copy is pinned to the revision above and its sha256 is checked on download."
        if published
        else "Not yet published on the Hugging Face Hub: `kclr.zoo.load` downloads the authors' "
        "checkpoint and converts it on first use (cached afterwards). The sha256 of the "
        "authors' files and of the converted weights are left empty until they have been "
        "computed from a real download; until then kclr cannot pin them."
    )
    values = {
        "name": entry.name,
        "title": entry.title,
        "paper": entry.paper,
        "paper_url": entry.paper_url,
        "license": entry.license,
        "license_text": _LICENSES.get(entry.license, entry.license),
        "dataset": entry.dataset,
        "top1": f"{entry.linear_eval_top1:.1f}",
        "top1_source": entry.linear_eval_source,
        "depth": entry.arch["depth"],
        "width": entry.arch["width_multiplier"],
        "sk": "yes" if entry.arch.get("sk_ratio", 0) > 0 else "no",
        "sk_ratio": entry.arch.get("sk_ratio", 0.0),
        "feature_dim": entry.feature_dim,
        "head": "yes (3-layer SimCLRv2 head)" if entry.has_projection_head else "no",
        "arch": entry.arch_name,
        "checkpoint_urls": ", ".join(urls.values()),
        "checkpoint_sha256": (
            ", ".join(f"`{k}` {v}" for k, v in pinned.items()) if pinned else "not recorded yet"
        ),
        "hub_repo": entry.hub.get("repo") or "not published yet",
        "hub_revision": entry.hub.get("revision") or "none",
        "weights_sha256": hub_sha or "not recorded yet",
        "publication_note": note,
        "bibtex": _BIBTEX.get(entry.paper_url, entry.paper),
    }
    return _template("model_card.md").substitute(values)


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
    return _template("export_card.md").substitute(values)


def write_catalog_cards(directory: str) -> list[str]:
    """Writes `<name>.md` for every catalog model and an index `README.md` into `directory`."""
    import pathlib

    from kclr.zoo import catalog

    root = pathlib.Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in catalog.entries():
        path = root / f"{entry.name}.md"
        path.write_text(render_catalog_card(entry), encoding="utf-8")
        written.append(str(path))
    lines = [
        "# kclr model zoo: model cards",
        "",
        "One card per published model; the same text becomes the README of the model's Hub",
        "repository. Regenerate after editing `kclr/zoo/catalog.json` with",
        "`python -m kclr.zoo.cards zoo/`.",
        "",
        "| name | model | features | linear top-1 (authors) | card |",
        "|---|---|---:|---:|---|",
    ]
    for e in catalog.entries():
        lines.append(
            f"| {e.name} | {e.title} | {e.feature_dim} | {e.linear_eval_top1:.1f} | "
            f"[{e.name}.md]({e.name}.md) |"
        )
    (root / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written


if __name__ == "__main__":  # pragma: no cover
    import sys

    for written_path in write_catalog_cards(sys.argv[1] if len(sys.argv) > 1 else "zoo"):
        print(written_path)
