"""Data sources: image folders, TFRecord shards, NumPy arrays, TFDS and the demo dataset.

`resolve_source(spec, split)` turns what a user passes (a path, `"demo"`, `"tfds:NAME"`,
arrays) into a `Source`, which the pipeline in `kclr.data.pipeline` reads.

This module resolves the specification, reads arrays and the demo dataset and applies
subsets; paths (folders, image files, TFRecord shards) are read by
`kclr.data.path_sources`, TFDS by `kclr.data.tfds_sources`, and `Source` lives in
`kclr.data.source_types` (all re-exported here).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from kclr.data import subsets
from kclr.data.hf_sources import PREFIX as HF_PREFIX
from kclr.data.hf_sources import hf_source
from kclr.data.path_sources import (
    IMAGE_EXTENSIONS,
    TFRECORD_PREFIXES,
    path_source,
    probe_image_file,
    tfrecord_index,
)
from kclr.data.source_types import TEST_SPLIT_NAMES, Source, UnreadableSourceError
from kclr.data.tfds_sources import tfds_source


def resolve_source(
    spec: Any,
    split: str = "train",
    label_fraction: float | None = None,
    subset_file: str | os.PathLike | None = None,
    label_fraction_seed: int = 0,
    validate: bool = True,
    label_offset: int = 0,
    data_dir: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
) -> Source:
    """Resolves a data specification into a `Source`.

    Accepted specifications:

    - `"demo"`: the built-in demo dataset (`kclr.data.demo`);
    - a directory of class subfolders (labels = sorted folder names) or a flat folder of
      images (unlabelled); `train/` and `test/` (or `val/`, `validation/`) subfolders are
      the splits;
    - TFRecord shards in the ImageNet layout (`image/encoded`, `image/class/label`,
      optional `image/filename`): a directory holding `train-*` / `validation-*` shards,
      a glob pattern or a `.tfrecord` file;
    - NumPy arrays: `(images, labels)`, `images` alone (unlabelled), or a dict of splits
      `{"train": (images, labels), "test": ...}`;
    - `"tfds:NAME"` (needs `pip install kclr[tfds]`);
    - `"hf:NAME[@REVISION][:SPLIT]"`: a Hugging Face dataset on the Hub or a folder written
      by `save_to_disk` (needs `pip install kclr[hf-datasets]`; `kclr.data.hf_sources`).

    Args:
        spec: the specification, or a `Source` (returned as is).
        split: `"train"` or `"test"`.
        label_fraction: keep a deterministic fraction of every class (e.g. 0.01, 0.1).
        subset_file: keep only the files listed in this text file (one name per line,
            the official ImageNet 1% / 10% lists).
        label_fraction_seed: seed of the per-class selection.
        validate: check image files (signature and end marker) and skip unreadable ones
            with a warning naming a few.
        label_offset: added to TFRecord labels (`-1` for shards written with 1-based
            ImageNet labels).
        data_dir: TFDS data directory.
        image_column, label_column: the image and label columns of an `hf:` source
            (default: found by feature type).

    Example:

    ```python
    source = kclr.data.resolve_source("photos/", split="train")
    source.num_classes, len(source)
    ```
    """
    if isinstance(spec, Source):
        source = spec
    elif isinstance(spec, str) and spec == "demo":
        from kclr.data import demo

        images, labels = demo.load(_demo_split(split))
        source = Source(
            kind="arrays",
            name=f"demo[{split}]",
            images=images,
            labels=np.asarray(labels, np.int32),
            num_classes=demo.NUM_CLASSES,
            class_names=list(getattr(demo, "CLASS_NAMES", [])) or None,
            has_labels=True,
        )
    elif isinstance(spec, str) and spec.startswith("tfds:"):
        source = tfds_source(spec[len("tfds:") :], split, data_dir)
    elif isinstance(spec, str) and spec.startswith(HF_PREFIX):
        source = hf_source(spec[len(HF_PREFIX) :], split, image_column, label_column, validate)
    elif isinstance(spec, (str, os.PathLike)):
        source = path_source(str(spec), split, validate, label_offset)
    else:
        source = _array_source(spec, split)
    if subset_file is not None:
        source = _apply_subset_file(source, subsets.read_subset_file(subset_file))
    if label_fraction is not None:
        source = _apply_label_fraction(source, label_fraction, label_fraction_seed)
    return source


def num_examples(source: Any, split: str = "train") -> int:
    """Number of examples of a source (after skipping unreadable files and subsets).

    TFRecord shards are counted by reading them once (the count is cached on the source).

    Example:

    ```python
    kclr.data.num_examples("demo", "train")  # 6000
    ```
    """
    if not isinstance(source, Source):
        source = resolve_source(source, split)
    return len(source)


# ----------------------------------------------------------------------- arrays / demo
def _demo_split(split: str) -> str:
    return "train" if split == "train" else "test"


def _array_source(spec: Any, split: str) -> Source:
    if isinstance(spec, dict):
        key = split if split in spec else next((k for k in TEST_SPLIT_NAMES if k in spec), None)
        if split == "train" and "train" not in spec:
            key = None
        if key is None:
            raise ValueError(
                f"The dict of splits has keys {sorted(spec)}, none for split {split!r}. "
                "Use 'train' and 'test' (or 'val', 'validation') as keys."
            )
        spec = spec[key]
    labels = None
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        images, labels = spec
    else:
        images = spec
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"NumPy images must have shape [N, H, W, 3] (or [N, H, W] / [N, H, W, 1] for "
            f"grayscale); received shape {images.shape}."
        )
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    if len(images) == 0:
        raise UnreadableSourceError("The NumPy image array is empty: it holds no images.")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1).astype(np.int32)
        if len(labels) != len(images):
            raise ValueError(
                f"Received {len(images)} images but {len(labels)} labels; pass one label per image."
            )
    return Source(
        kind="arrays",
        name=f"arrays{tuple(images.shape)}",
        images=images,
        labels=labels,
        num_classes=int(labels.max()) + 1 if labels is not None else None,
        has_labels=labels is not None,
    )


# -------------------------------------------------------------------------- subsets
def _apply_subset_file(source: Source, names: set[str]) -> Source:
    if source.kind == "files":
        keep = [i for i, f in enumerate(source.files) if os.path.basename(f) in names]
        return _subset_files(source, keep, f"subset file ({len(names)} names)")
    if source.kind in ("tfrecord", "tfds"):
        return dataclasses.replace(source, filename_filter=frozenset(names), cached_count=None)
    raise ValueError(
        f"subset_file selects images by file name, but {source.name!r} holds arrays without "
        "file names; use label_fraction= instead."
    )


def _apply_label_fraction(source: Source, fraction: float, seed: int) -> Source:
    if not source.has_labels:
        raise ValueError(
            f"label_fraction={fraction} needs labels, but {source.name!r} is unlabelled."
        )
    if source.kind == "files":
        keep = subsets.label_fraction_indices(source.labels, fraction, seed)
        return _subset_files(source, keep.tolist(), f"label_fraction={fraction}")
    if source.kind == "arrays":
        keep = subsets.label_fraction_indices(source.labels, fraction, seed)
        return dataclasses.replace(
            source,
            images=source.images[keep],
            labels=source.labels[keep],
            name=f"{source.name}[label_fraction={fraction}]",
            cached_count=None,
        )
    if source.kind == "hf":
        keep = subsets.label_fraction_indices(source.labels, fraction, seed)
        return dataclasses.replace(
            source, rows=source.rows.subset(keep), labels=source.labels[keep],
            name=f"{source.name}[label_fraction={fraction}]", cached_count=len(keep),
        )  # fmt: skip
    if source.kind == "tfrecord":
        index = list(tfrecord_index(source))
        labels = np.asarray([label for label, _ in index])
        keep = subsets.label_fraction_indices(labels, fraction, seed)
        names = frozenset(index[i][1] for i in keep)
        return dataclasses.replace(source, filename_filter=names, cached_count=len(names))
    raise ValueError(
        f"label_fraction is not available for TFDS sources ({source.name!r}); use the TFDS "
        "subset datasets (e.g. 'tfds:imagenet2012_subset/1pct') or subset_file=."
    )


def _subset_files(source: Source, keep: list[int], what: str) -> Source:
    if not keep:
        raise UnreadableSourceError(f"{what} selects no images of {source.name!r}.")
    return dataclasses.replace(
        source,
        files=[source.files[i] for i in keep],
        labels=source.labels[keep] if source.labels is not None else None,
        name=f"{source.name}[{what}]",
        cached_count=None,
    )


__all__ = [
    "IMAGE_EXTENSIONS",
    "TEST_SPLIT_NAMES",
    "TFRECORD_PREFIXES",
    "Source",
    "UnreadableSourceError",
    "num_examples",
    "probe_image_file",
    "resolve_source",
    "tfrecord_index",
]
