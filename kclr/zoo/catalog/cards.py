"""The model cards of catalog models (README.md with Hugging Face Hub metadata).

A folder that is no catalog model gets the generic card of `kclr.zoo.folder.card`;
`render_catalog_card` is the renderer the resolver hands to the folder writer for a
catalog model.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

from kclr.durable import atomic_write_text
from kclr.zoo import catalog
from kclr.zoo.catalog import DEFAULT_OFFICIAL_URL, CatalogEntry
from kclr.zoo.conversion.compare import describe
from kclr.zoo.folder.card import template

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


_TASKS = {
    "linear evaluation": "Linear evaluation (frozen features)",
    "fine-tuned": "Fine-tuned classification",
    "supervised": "Supervised classification",
}


def _model_index(entry: CatalogEntry) -> str:
    if entry.top1 is None:
        return ""
    return f"""metrics:
- accuracy
model-index:
- name: {entry.name}
  results:
  - task:
      type: image-classification
      name: {_TASKS[entry.top1_protocol]}
    dataset:
      type: {entry.dataset}
      name: ImageNet (ILSVRC-2012)
    metrics:
    - type: accuracy
      name: top-1 (reported by the authors)
      value: {entry.top1:.1f}
"""


def _results(entry: CatalogEntry) -> str:
    what = {
        "linear evaluation": "Linear evaluation on ImageNet",
        "fine-tuned": f"ImageNet top-1 of this model ({entry.title.rsplit(', ', 1)[-1]})",
        "supervised": "ImageNet top-1 of this supervised model",
    }[entry.top1_protocol]
    if entry.top1 is None:
        return (
            f"{what}: not reported in the authors' tables that kclr checked; kclr has not "
            "run this evaluation and does not invent a number."
        )
    return (
        f"{what}, top-1 as reported by the authors: **{entry.top1:.1f} %** "
        f"({entry.top1_source}). kclr has not re-run this evaluation."
    )


def _source_hashes(meta: dict[str, Any] | None) -> str:
    files = ((meta or {}).get("source") or {}).get("files") or {}
    if not files:
        return "not recorded yet (recorded from the first verified download)"
    return ", ".join(f"`{name}` {item['sha256']}" for name, item in files.items())


def _verification(meta: dict[str, Any] | None) -> str:
    result = ((meta or {}).get("converted_from") or {}).get("verification")
    if not result:
        return "not run for this copy (`kclr zoo verify NAME --reference SAVED_MODEL`)"
    return describe(result)


def render_catalog_card(
    entry: CatalogEntry,
    weights_sha256: str | None = None,
    base_url: str | None = None,
    meta: dict[str, Any] | None = None,
) -> str:
    """The model card of a catalog model (`zoo/<name>.md`, and README.md on the Hub).

    `meta` (a converted folder's `metadata.json`) adds the sha256 of the authors' files
    and the verification result.
    """
    base = base_url or DEFAULT_OFFICIAL_URL
    sources = [", ".join(s["urls"].values()) for s in entry.checkpoint_sources(base)]
    hub_sha = weights_sha256 or (entry.hub.get("sha256") or {}).get("model.weights.h5")
    published = entry.hub.get("repo") is not None
    note = (
        "The Hub copy is pinned to the revision above and its sha256 is checked on download."
        if published
        else "Not yet published on the Hugging Face Hub: `kclr.zoo.load` downloads the authors' "
        "checkpoint and converts it on first use (cached afterwards). The sha256 of each "
        "downloaded file is recorded on first use and checked on every later use."
    )
    if entry.has_projection_head is None:
        head = "not known before conversion (kept if the checkpoint has one)"
    else:
        head = "yes" if entry.has_projection_head else "no"
    supervised = (
        "1000-class linear classifier on the first projection-head layer (the authors' "
        "`ft_proj_selector=1`)"
        if entry.ft_proj_selector
        else "1000-class linear classifier on the features, when the checkpoint has one"
    )
    values = {
        "name": entry.name,
        "title": entry.title,
        "version": entry.version,
        "category": entry.category,
        "paper": entry.paper,
        "paper_url": entry.paper_url,
        "license": entry.license,
        "license_text": _LICENSES.get(entry.license, entry.license),
        "dataset": entry.dataset,
        "model_index": _model_index(entry),
        "results": _results(entry),
        "depth": entry.arch["depth"],
        "width": entry.arch["width_multiplier"],
        "sk": "yes" if entry.arch.get("sk_ratio", 0) > 0 else "no",
        "sk_ratio": entry.arch.get("sk_ratio", 0.0),
        "feature_dim": entry.feature_dim,
        "head": head,
        "supervised": supervised,
        "arch": entry.arch_name,
        "checkpoint_urls": "; if unavailable: ".join(sources),
        "saved_model_url": entry.saved_model_url(base),
        "checkpoint_sha256": _source_hashes(meta),
        "converted_from": ((meta or {}).get("source") or {}).get("source_url")
        or "not converted yet",
        "verification": _verification(meta),
        "hub_repo": entry.hub.get("repo") or "not published yet",
        "hub_revision": entry.hub.get("revision") or "none",
        "weights_sha256": hub_sha or "not recorded yet",
        "publication_note": note,
        "bibtex": _BIBTEX.get(entry.paper_url, entry.paper),
    }
    return template("model_card.md").substitute(values)


def write_catalog_cards(directory: str) -> list[str]:
    """Writes `<name>.md` for every catalog model and an index `README.md` into `directory`."""
    root = pathlib.Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in catalog.entries():
        path = root / f"{entry.name}.md"
        atomic_write_text(path, render_catalog_card(entry))
        written.append(str(path))
    lines = [
        "# kclr model zoo: model cards",
        "",
        "One card per model of the authors' release; the same text becomes the README of the",
        "model's Hub repository. Generated from the release table (`kclr/zoo/catalog/release.py`):",
        "regenerate with `python -m kclr.zoo.catalog.cards zoo/`.",
        "",
        *catalog_table(link=True),
    ]
    atomic_write_text(root / "README.md", "\n".join(lines) + "\n")
    return written


def catalog_table(link: bool = False) -> list[str]:
    """The whole catalog as Markdown table lines (README, docs, `zoo/README.md`)."""
    lines = [
        "| name | model | features | top-1 (authors) | protocol |" + (" card |" if link else ""),
        "|---|---|---:|---:|---|" + ("---|" if link else ""),
    ]
    for e in catalog.entries():
        row = f"| {e.name} | {e.title} | {e.feature_dim} | {e.top1_text} | {e.top1_protocol} |"
        lines.append(row + (f" [{e.name}.md]({e.name}.md) |" if link else ""))
    return lines


def release_table() -> list[str]:
    """One row per released architecture, one column per release category (README)."""
    columns = [
        ("", "pretrained (linear eval)"),
        ("-ft1", "`-ft1`"),
        ("-ft10", "`-ft10`"),
        ("-ft100", "`-ft100`"),
        ("-supervised", "`-supervised`"),
    ]
    lines = [
        "| name | " + " | ".join(title for _, title in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    bases = [e.name for e in catalog.entries() if e.category in ("pretrain", "pretrained")]
    for base in bases:
        cells = []
        for suffix, _ in columns:
            if not catalog.is_known(base + suffix):
                cells.append("-")
                continue
            cells.append(catalog.get(base + suffix).top1_text.replace("not reported", "n/r"))
        lines.append(f"| `{base}` | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":  # pragma: no cover
    for written_path in write_catalog_cards(sys.argv[1] if len(sys.argv) > 1 else "zoo"):
        print(written_path)
