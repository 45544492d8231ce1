"""Data sources: image folders, TFRecord shards, NumPy arrays, TFDS and the demo dataset.

`resolve_source(spec, split)` turns what a user passes (a path, `"demo"`, `"tfds:NAME"`,
arrays) into a `Source`, which the pipeline in `kclr.data.pipeline` reads.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pathlib
import warnings
from typing import Any

import numpy as np

from kclr.data import subsets

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
TEST_SPLIT_NAMES = ("test", "val", "validation")
TFRECORD_PREFIXES = {"train": ("train",), "test": ("validation", "val", "test")}
_MAGIC = {
    "jpeg": b"\xff\xd8\xff",
    "png": b"\x89PNG\r\n\x1a\n",
    "gif87": b"GIF87a",
    "gif89": b"GIF89a",
    "bmp": b"BM",
}
_WARN_NAMES = 5


class UnreadableSourceError(ValueError):
    """A data source holds no readable images."""


@dataclasses.dataclass
class Source:
    """A resolved data source (what `resolve_source` returns).

    Attributes:
        kind: `"files"` (image files), `"tfrecord"`, `"arrays"` or `"tfds"`.
        name: a description used in messages.
        files: image files (`"files"`) or TFRecord shards (`"tfrecord"`).
        labels: int32 labels `[N]` for files and arrays, or None when unlabelled.
        images: the image array `[N, H, W, 3]` for `"arrays"`.
        class_names: class names (folder names) where known.
        num_classes: number of classes where known.
        has_labels: whether examples carry labels.
        skipped: files skipped as unreadable, with the reason.
        tfds_name, tfds_split, data_dir: TFDS dataset, split and data directory.
        label_offset: added to TFRecord labels (-1 for 1-based ImageNet shards).
        filename_filter: TFRecord / TFDS examples kept, by file base name.
    """

    kind: str
    name: str
    files: list[str] | None = None
    labels: np.ndarray | None = None
    images: np.ndarray | None = None
    class_names: list[str] | None = None
    num_classes: int | None = None
    has_labels: bool = False
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    tfds_name: str | None = None
    tfds_split: str | None = None
    data_dir: str | None = None
    label_offset: int = 0
    filename_filter: frozenset[str] | None = None
    _num_examples: int | None = None

    def __len__(self) -> int:
        return num_examples(self)


def resolve_source(
    spec: Any,
    split: str = "train",
    label_fraction: float | None = None,
    subset_file: str | os.PathLike | None = None,
    label_fraction_seed: int = 0,
    validate: bool = True,
    label_offset: int = 0,
    data_dir: str | None = None,
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
    - `"tfds:NAME"` (needs `pip install kclr[tfds]`).

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
        source = _tfds_source(spec[len("tfds:") :], split, data_dir)
    elif isinstance(spec, (str, os.PathLike)):
        source = _path_source(str(spec), split, validate, label_offset)
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
    if source._num_examples is None:
        if source.kind == "files":
            source._num_examples = len(source.files)
        elif source.kind == "arrays":
            source._num_examples = len(source.images)
        elif source.kind == "tfrecord":
            source._num_examples = _count_records(source)
        else:
            source._num_examples = _tfds_count(source)
    return source._num_examples


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


# ----------------------------------------------------------------------------- paths
def _path_source(spec: str, split: str, validate: bool, label_offset: int) -> Source:
    if any(ch in spec for ch in "*?["):
        shards = sorted(glob.glob(spec))
        if not shards:
            raise FileNotFoundError(f"No files match the pattern {spec!r}.")
        return _tfrecord_source(spec, shards, label_offset)
    path = pathlib.Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"Data path {spec!r} does not exist. Pass a folder of images (class subfolders "
            "give labels), TFRecord shards, 'demo' or 'tfds:NAME'."
        )
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return _files_source(str(path), [str(path)], None, None, validate)
        return _tfrecord_source(spec, [str(path)], label_offset)
    children = {p.name: p for p in path.iterdir() if p.is_dir()}
    test_dir = next((children[n] for n in TEST_SPLIT_NAMES if n in children), None)
    has_splits = "train" in children and test_dir is not None
    if has_splits:
        path = children["train"] if split == "train" else test_dir
    shards = _tfrecord_shards(path, split)
    if shards:
        return _tfrecord_source(str(path), shards, label_offset)
    if split != "train" and not has_splits:
        raise ValueError(
            f"Data folder {spec!r} has no test split: expected 'train/' and 'test/' (or "
            f"'val/', 'validation/') subfolders, or 'validation-*' TFRecord shards, for "
            f"split={split!r}."
        )
    class_dirs = sorted(
        p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".") and _has_images(p)
    )
    if class_dirs:
        files, labels = [], []
        for label, class_dir in enumerate(class_dirs):
            members = _list_images(class_dir, recursive=True)
            files += members
            labels += [label] * len(members)
        return _files_source(
            str(path), files, np.asarray(labels, np.int32), [p.name for p in class_dirs], validate
        )
    files = _list_images(path)
    if not files:
        raise UnreadableSourceError(
            f"Data folder {str(path)!r} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)} "
            "files directly inside it or in class subfolders) and no TFRecord shards."
        )
    return _files_source(str(path), files, None, None, validate)


def _list_images(path: pathlib.Path, recursive: bool = False) -> list[str]:
    pattern = path.rglob("*") if recursive else path.iterdir()
    return sorted(str(p) for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _has_images(path: pathlib.Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.rglob("*") if p.is_file())


def _tfrecord_shards(path: pathlib.Path, split: str) -> list[str]:
    for prefix in TFRECORD_PREFIXES["train" if split == "train" else "test"]:
        shards = sorted(str(p) for p in path.glob(f"{prefix}-*") if p.is_file())
        if shards:
            return shards
    return sorted(str(p) for p in path.glob("*.tfrecord*") if p.is_file())


def probe_image_file(path: str) -> str | None:
    """Checks an image file cheaply; returns None when it looks readable, else the reason.

    Reads the first and last bytes only: the format signature (JPEG, PNG, GIF, BMP) and,
    for JPEG and PNG, the end marker, which catches truncated files.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(16)
            handle.seek(max(0, size - 16))
            tail = handle.read(16)
    except OSError as error:
        return f"unreadable ({error.strerror or error})"
    if size == 0:
        return "empty file"
    if head.startswith(_MAGIC["jpeg"]):
        return None if b"\xff\xd9" in tail else "truncated JPEG (no end-of-image marker)"
    if head.startswith(_MAGIC["png"]):
        return None if b"IEND" in tail else "truncated PNG (no IEND chunk)"
    if head.startswith((_MAGIC["gif87"], _MAGIC["gif89"], _MAGIC["bmp"])):
        return None
    return "not a JPEG, PNG, GIF or BMP image"


def _files_source(name, files, labels, class_names, validate) -> Source:
    skipped: list[tuple[str, str]] = []
    if validate:
        keep = []
        for i, path in enumerate(files):
            reason = probe_image_file(path)
            if reason is None:
                keep.append(i)
            else:
                skipped.append((path, reason))
        files = [files[i] for i in keep]
        labels = labels[keep] if labels is not None else None
        if skipped:
            shown = "; ".join(f"{p} ({r})" for p, r in skipped[:_WARN_NAMES])
            more = f" and {len(skipped) - _WARN_NAMES} more" if len(skipped) > _WARN_NAMES else ""
            warnings.warn(
                f"Skipped {len(skipped)} unreadable image file(s) of {name!r}: {shown}{more}.",
                stacklevel=4,
            )
    if not files:
        raise UnreadableSourceError(
            f"Data source {name!r} has no readable images ({len(skipped)} file(s) skipped as "
            "unreadable). Check the files, or point to another folder."
        )
    return Source(
        kind="files",
        name=name,
        files=list(files),
        labels=labels,
        class_names=class_names,
        num_classes=len(class_names) if class_names else None,
        has_labels=labels is not None,
        skipped=skipped,
    )


# ------------------------------------------------------------------------- TFRecord
def _tfrecord_source(name: str, shards: list[str], label_offset: int) -> Source:
    return Source(
        kind="tfrecord",
        name=name,
        files=shards,
        has_labels=True,
        label_offset=int(label_offset),
    )


def _count_records(source: Source) -> int:
    import tensorflow as tf

    if source.filename_filter is None:
        return int(tf.data.TFRecordDataset(source.files).reduce(0, lambda n, _: n + 1))
    return sum(1 for _ in tfrecord_index(source))


def tfrecord_index(source: Source):
    """Yields `(label, file base name)` for each kept record of a TFRecord source."""
    import tensorflow as tf

    from kclr.data.decode import parse_tfrecord

    dataset = tf.data.TFRecordDataset(source.files).map(
        lambda r: parse_tfrecord(r, source.label_offset)
    )
    for _, label, filename in dataset.as_numpy_iterator():
        base = os.path.basename(filename.decode())
        if source.filename_filter is None or base in source.filename_filter:
            yield int(label), base


# ----------------------------------------------------------------------------- TFDS
def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "'tfds:' data sources need TensorFlow Datasets: `pip install kclr[tfds]`."
        ) from error
    return tfds


def _tfds_source(name: str, split: str, data_dir: str | None) -> Source:
    tfds = _import_tfds()
    builder = tfds.builder(name, data_dir=data_dir)
    splits = builder.info.splits
    if splits and split != "train" and split not in splits:
        split = next((s for s in TEST_SPLIT_NAMES if s in splits), split)
    if splits and split not in splits:
        raise ValueError(
            f"TFDS dataset {name!r} has no split {split!r}; available: {sorted(splits)}."
        )
    features = builder.info.features
    label = features["label"] if "label" in features.keys() else None
    num_classes = getattr(label, "num_classes", None)
    return Source(
        kind="tfds",
        name=f"tfds:{name}[{split}]",
        tfds_name=name,
        tfds_split=split,
        data_dir=data_dir,
        has_labels=label is not None,
        num_classes=num_classes,
        class_names=list(getattr(label, "names", []) or []) or None,
        _num_examples=None,
    )


def _tfds_count(source: Source) -> int:
    tfds = _import_tfds()
    builder = tfds.builder(source.tfds_name, data_dir=source.data_dir)
    if source.filename_filter is not None:
        return len(source.filename_filter)
    return int(builder.info.splits[source.tfds_split].num_examples)


# -------------------------------------------------------------------------- subsets
def _apply_subset_file(source: Source, names: set[str]) -> Source:
    if source.kind == "files":
        keep = [i for i, f in enumerate(source.files) if os.path.basename(f) in names]
        return _subset_files(source, keep, f"subset file ({len(names)} names)")
    if source.kind in ("tfrecord", "tfds"):
        return dataclasses.replace(source, filename_filter=frozenset(names), _num_examples=None)
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
            _num_examples=None,
        )
    if source.kind == "tfrecord":
        index = list(tfrecord_index(source))
        labels = np.asarray([label for label, _ in index])
        keep = subsets.label_fraction_indices(labels, fraction, seed)
        names = frozenset(index[i][1] for i in keep)
        return dataclasses.replace(source, filename_filter=names, _num_examples=len(names))
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
        _num_examples=None,
    )
