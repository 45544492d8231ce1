"""The authors' release as one table; `expand()` turns it into catalog entries.

Reference: google-research/simclr README (v1 and SimCLRv2 tables), the bucket layout
`gs://simclr-checkpoints/simclrv2/<category>/r<depth>_<width>x_sk<0|1>/` and
`gs://simclr-checkpoints/simclrv1/<category>/<width>x/` (files `model.ckpt-<step>.*`).

Top-1 values are the authors' reported ImageNet numbers (linear evaluation for
pretrained models, top-1 of the fine-tuned or supervised model otherwise); `None`
where the authors' README table we checked does not report one. kclr has not re-run
them. Names are stable: `simclr-r50-4x`, `simclr-r50-1x-ft10`,
`simclrv2-r50-1x-sk0`, `simclrv2-r152-3x-sk1-ft100`, `simclrv2-r101-2x-sk1-supervised`.
"""

from __future__ import annotations

from typing import Any

V1_PAPER = (
    "Chen et al., A Simple Framework for Contrastive Learning of Visual Representations, ICML 2020",
    "https://arxiv.org/abs/2002.05709",
)
V2_PAPER = (
    "Chen et al., Big Self-Supervised Models are Strong Semi-Supervised Learners, NeurIPS 2020",
    "https://arxiv.org/abs/2006.10029",
)
V1_README = "google-research/simclr README (SimCLR v1 released checkpoints)"
V2_README = "google-research/simclr README, SimCLRv2 table"
V2_COLAB = "google-research/simclr tf2/colabs/imagenet_results.ipynb (released checkpoint)"

# category -> (name suffix, bucket folder, title words, top-1 protocol, ft_proj_selector)
V1_CATEGORIES = {
    "pretrain": ("", "pretrain", "pretrained", "linear evaluation", 0),
    "finetune_10pct": ("-ft10", "finetune_10pct", "fine-tuned on 10% of labels", "fine-tuned", 0),
    "finetune_100pct": (
        "-ft100",
        "finetune_100pct",
        "fine-tuned on 100% of labels",
        "fine-tuned",
        0,
    ),
}
V1_STEPS = {  # width -> category -> checkpoint step
    1: {"pretrain": 225206, "finetune_100pct": 9384, "finetune_10pct": 939},
    2: {"pretrain": 225206, "finetune_100pct": 18768, "finetune_10pct": 939},
    4: {"pretrain": 225206, "finetune_100pct": 4692, "finetune_10pct": 470},
}
V1_TOP1 = {  # width -> category -> top-1
    1: {"pretrain": 69.1, "finetune_10pct": 65.8, "finetune_100pct": 75.6},
    2: {"pretrain": 74.2, "finetune_10pct": 71.6, "finetune_100pct": 79.2},
    4: {"pretrain": 76.6, "finetune_10pct": 74.5, "finetune_100pct": 80.8},
}

# The SimCLRv2 fine-tuned models put the classifier on the first projection-head layer
# for 1% / 10% labels ("fine-tune from the middle layer"); 100% from the encoder.
V2_CATEGORIES = {
    "pretrained": ("", "pretrained", "linear evaluation", 0, 250228),
    "finetuned_1pct": ("-ft1", "fine-tuned on 1% of labels", "fine-tuned", 1, 751),
    "finetuned_10pct": ("-ft10", "fine-tuned on 10% of labels", "fine-tuned", 1, 3754),
    "finetuned_100pct": ("-ft100", "fine-tuned on 100% of labels", "fine-tuned", 0, 37535),
    "supervised": ("-supervised", "supervised baseline", "supervised", 0, 28151),
}
# (depth, width, sk): released architectures (Table 1 of the SimCLRv2 paper: 13 x 5 models)
V2_ARCHS = [(d, w, sk) for d in (50, 101, 152) for w in (1, 2) for sk in (0, 1)] + [(152, 3, 1)]
V2_TOP1 = {  # (depth, width, sk) -> category -> top-1 (README table; colab where noted)
    (50, 1, 0): {
        "pretrained": 71.7,
        "finetuned_1pct": 57.9,
        "finetuned_10pct": 68.4,
        "finetuned_100pct": 76.3,
        "supervised": 76.6,
    },
    (50, 1, 1): {
        "pretrained": 74.6,
        "finetuned_1pct": 64.5,
        "finetuned_10pct": 72.1,
        "finetuned_100pct": 78.7,
        "supervised": 78.5,
    },
    (50, 2, 0): {
        "pretrained": 75.6,
        "finetuned_1pct": 66.3,
        "finetuned_10pct": 73.9,
        "finetuned_100pct": 79.1,
        "supervised": 77.8,
    },
    (50, 2, 1): {
        "pretrained": 77.7,
        "finetuned_1pct": 70.6,
        "finetuned_10pct": 77.0,
        "finetuned_100pct": 81.3,
        "supervised": 79.3,
    },
    (152, 3, 1): {"pretrained": 79.9},
}
V2_TOP1_FROM_COLAB = {(152, 3, 1)}
V1_ZIP = "simclr-gcs/checkpoints/ResNet50_{width}x.zip"


def _files(step: int) -> list[str]:
    return [f"model.ckpt-{step}.index", f"model.ckpt-{step}.data-00000-of-00001"]


def _feature_dim(depth: int, width: int) -> int:
    return 2048 * width  # ResNet-50/101/152 (bottleneck) features: 2048 x width


def _v1(width: int, category: str) -> dict[str, Any]:
    suffix, folder, words, protocol, selector = V1_CATEGORIES[category]
    step = V1_STEPS[width][category]
    sources = [{"path": f"simclr-checkpoints/simclrv1/{folder}/{width}x", "files": _files(step)}]
    if category == "pretrain":
        sources.append({"path": V1_ZIP.format(width=width), "files": [], "archive": "zip"})
    top1 = V1_TOP1[width][category]
    return {
        "name": f"simclr-r50-{width}x{suffix}",
        "title": f"SimCLR v1 ResNet-50 ({width}x), {words}",
        "version": "simclr-v1",
        "category": category,
        "paper": V1_PAPER[0],
        "paper_url": V1_PAPER[1],
        "arch": {"depth": 50, "width_multiplier": width, "sk_ratio": 0.0},
        "feature_dim": _feature_dim(50, width),
        "top1": top1,
        "top1_protocol": protocol,
        "top1_source": V1_README,
        "checkpoint": {"format": "tf1", "sources": sources},
        "saved_model": f"simclr-checkpoints-tf2/simclrv1/{folder}/{width}x/saved_model",
        "has_projection_head": False,
        "ft_proj_selector": selector,
    }


def _v2(depth: int, width: int, sk: int, category: str) -> dict[str, Any]:
    suffix, words, protocol, selector, step = V2_CATEGORIES[category]
    code = f"r{depth}_{width}x_sk{sk}"
    top1 = V2_TOP1.get((depth, width, sk), {}).get(category)
    source = V2_COLAB if (depth, width, sk) in V2_TOP1_FROM_COLAB else V2_README
    kernels = "selective kernels" if sk else "no selective kernels"
    return {
        "name": f"simclrv2-r{depth}-{width}x-sk{sk}{suffix}",
        "title": f"SimCLRv2 ResNet-{depth} ({width}x, {kernels}), {words}",
        "version": "simclr-v2",
        "category": category,
        "paper": V2_PAPER[0],
        "paper_url": V2_PAPER[1],
        "arch": {"depth": depth, "width_multiplier": width, "sk_ratio": 0.0625 if sk else 0.0},
        "feature_dim": _feature_dim(depth, width),
        "top1": top1,
        "top1_protocol": protocol,
        "top1_source": f"{source} ({category} {code})" if top1 is not None else None,
        "checkpoint": {
            "format": "tf1",
            "sources": [
                {"path": f"simclr-checkpoints/simclrv2/{category}/{code}", "files": _files(step)}
            ],
        },
        "saved_model": f"simclr-checkpoints-tf2/simclrv2/{category}/{code}/saved_model",
        "has_projection_head": None if category == "supervised" else True,  # None: unknown
        "ft_proj_selector": selector,
    }


def expand() -> list[dict[str, Any]]:
    """Every released model as a catalog entry (plain dicts, JSON-compatible)."""
    rows = [_v1(w, c) for w in (1, 2, 4) for c in V1_CATEGORIES]
    rows += [_v2(d, w, sk, c) for d, w, sk in V2_ARCHS for c in V2_CATEGORIES]
    for row in rows:
        row.update(dataset="imagenet-1k", license="apache-2.0")
    return rows
