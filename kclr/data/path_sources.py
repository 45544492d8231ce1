"""Sources read from paths: folders and files of images, and TFRecord shards.

`path_source` is what `kclr.data.resolve_source` uses for a path or a glob pattern.
"""

from __future__ import annotations

import glob
import os
import pathlib
import warnings

import numpy as np

from kclr.data.source_types import (
    TEST_SPLIT_NAMES,
    NoTestSplitError,
    Source,
    UnreadableSourceError,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
TFRECORD_PREFIXES = {"train": ("train",), "test": ("validation", "val", "test")}
_MAGIC = {
    "jpeg": b"\xff\xd8\xff",
    "png": b"\x89PNG\r\n\x1a\n",
    "gif87": b"GIF87a",
    "gif89": b"GIF89a",
    "bmp": b"BM",
}
_WARN_NAMES = 5


# ---------------------------------------------------------------------- image files
def path_source(spec: str, split: str, validate: bool, label_offset: int) -> Source:
    """A `Source` of image files or TFRecord shards from a path or glob (see `resolve_source`)."""
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
        raise NoTestSplitError(
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
    return probe_image_bytes(head, tail, size)


def probe_image_bytes(head: bytes, tail: bytes, size: int) -> str | None:
    """`probe_image_file` on an image's first and last (at least 16) bytes and its size."""
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
        counter=count_records,
    )


def count_records(source: Source) -> int:
    """Number of kept records of a TFRecord source (reads the shards once)."""
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
