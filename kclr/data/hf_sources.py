"""Hugging Face datasets as a source: `"hf:NAME[@REVISION][:SPLIT]"`.

NAME is a dataset on the Hugging Face Hub (`"owner/name"`, read with
`datasets.load_dataset`, downloaded once into the `datasets` cache), a local folder
written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk` (read with
`datasets.load_from_disk`), or a local folder of data files such as a Hub dataset's
parquet files (read with `datasets.load_dataset`). REVISION (Hub only) is a branch, tag or commit. Without
`:SPLIT`, kclr's train split is the dataset's `train` and its test split the first of
`test`, `val`, `validation`; a dataset of one split (a saved `Dataset`, or `:SPLIT`)
has no test split, like a folder without one.

The image column is the one whose feature is `datasets.Image` (the first, when there are
several) and the label column the one that is a `datasets.ClassLabel`; `data.image_column`
and `data.label_column` (or `resolve_source(..., image_column=, label_column=)`) choose
them by name. The images are never decoded by `datasets`: the image column is read as
its encoded bytes (`Image(decode=False)`) straight from the memory-mapped Arrow files,
a batch of rows at a time, into the same tf.data decode-and-augment pipeline as a
folder's files. Like a folder's files, every image is checked once when the source is
resolved (format signature and end marker); unreadable ones are left out and counted
against `data.max_bad_fraction` (`kclr.data.bad_files`).

Needs the `datasets` library: `pip install kclr[hf-datasets]`; it is imported only
when an `hf:` source is used.
"""

from __future__ import annotations

import os

import numpy as np

from kclr.data.path_sources import probe_image_bytes, probe_image_file
from kclr.data.source_types import (
    TEST_SPLIT_NAMES,
    NoTestSplitError,
    Source,
    UnreadableSourceError,
)

PREFIX = "hf:"
FETCH_ROWS = 64  # rows read from Arrow per call

__all__ = ["FETCH_ROWS", "PREFIX", "HFRows", "hf_source", "import_datasets", "parse_spec"]


def import_datasets():
    """Imports `datasets`, with an install hint when it is missing."""
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            "'hf:' data sources need the Hugging Face `datasets` library: "
            "`pip install kclr[hf-datasets]` (or `pip install datasets`)."
        ) from error
    return datasets


def parse_spec(spec: str) -> tuple[str, str | None, str | None]:
    """`(name, revision, split)` of `"NAME[@REVISION][:SPLIT]"` (the part after `hf:`)."""
    name, split = spec, None
    if ":" in spec and not os.path.isdir(spec):
        name, _, split = spec.rpartition(":")
    revision = None
    if "@" in name and not os.path.isdir(name):
        name, _, revision = name.rpartition("@")
    if not name or split == "" or revision == "":
        raise ValueError(
            f"Cannot read the data source 'hf:{spec}': expected 'hf:NAME[@REVISION][:SPLIT]', "
            "e.g. 'hf:owner/dataset', 'hf:owner/dataset@main:train' or 'hf:./saved_folder'."
        )
    return name, revision, split


class HFRows:
    """Encoded images, labels and names of the kept rows of one `datasets.Dataset` split."""

    def __init__(self, dataset, image_column: str, label_column: str | None, keep=None):
        self.dataset = dataset  # image column cast to Image(decode=False), other columns dropped
        self.image_column = image_column
        self.label_column = label_column
        self.keep = np.arange(len(dataset)) if keep is None else np.asarray(keep, np.int64)

    def __len__(self) -> int:
        return len(self.keep)

    def subset(self, positions) -> HFRows:
        """The rows at `positions` (of the kept rows)."""
        return HFRows(self.dataset, self.image_column, self.label_column, self.keep[positions])

    def labels(self) -> np.ndarray | None:
        if self.label_column is None:
            return None
        column = self.dataset.with_format("arrow")[self.label_column]
        values = np.asarray(column.to_numpy(zero_copy_only=False), np.float64)
        return np.where(np.isnan(values), -1, values).astype(np.int32)[self.keep]

    def fetch(self, positions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`(encoded bytes, int32 labels, names)` of the kept rows at `positions`."""
        rows = self.keep[np.asarray(positions, np.int64)]
        table = self.dataset.with_format("arrow")[rows.tolist()]
        images = table.column(self.image_column).combine_chunks()
        datas, paths = images.field("bytes").to_pylist(), images.field("path").to_pylist()
        out = []
        for data, path in zip(datas, paths, strict=True):
            if data is None and path:
                try:
                    with open(path, "rb") as handle:
                        data = handle.read()
                except OSError:
                    data = b""
            out.append(data or b"")
        if self.label_column is None:
            labels = np.full(len(rows), -1, np.int32)
        else:
            values = table.column(self.label_column).to_pylist()
            labels = np.asarray([-1 if v is None else v for v in values], np.int32)
        names = [p or f"row:{r}" for p, r in zip(paths, rows, strict=True)]
        return np.asarray(out, object), labels, np.asarray(names, object)


def hf_source(
    spec: str,
    split: str,
    image_column: str | None = None,
    label_column: str | None = None,
    validate: bool = True,
) -> Source:
    """A `Source` of the `hf:` specification `spec` (the part after `hf:`), see the module."""
    datasets = import_datasets()
    name, revision, explicit = parse_spec(spec)
    local = os.path.isdir(name)
    if local and revision is not None:
        raise ValueError(
            f"'hf:{spec}': a revision (@{revision}) applies to a Hub dataset, not to the "
            f"local folder {name!r}; drop '@{revision}'."
        )
    saved = local and any(
        os.path.exists(os.path.join(name, marker)) for marker in ("dataset_dict.json", "state.json")
    )
    try:  # a save_to_disk folder, else a Hub id or a folder of data files (parquet, ...)
        loaded = (
            datasets.load_from_disk(name)
            if saved
            else datasets.load_dataset(name, revision=revision)
        )
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"Cannot read the data source 'hf:{spec}': {error} Give a Hub dataset id "
            "('owner/name') or a folder written by Dataset.save_to_disk."
        ) from None
    dataset, split_name = _pick_split(loaded, spec, split, explicit)
    if len(dataset) == 0:
        raise UnreadableSourceError(f"The data source 'hf:{spec}' ({split_name}) has no rows.")
    features = dataset.features
    image_column = _image_column(features, image_column, spec)
    label_column = _label_column(features, label_column, spec)
    columns = [image_column] + ([label_column] if label_column else [])
    dataset = dataset.select_columns(columns).cast_column(
        image_column, datasets.Image(decode=False)
    )
    rows = HFRows(dataset, image_column, label_column)
    skipped = _validate(rows, spec) if validate else []
    if skipped:
        bad = {index for index, _ in skipped}
        rows = rows.subset([i for i in range(len(rows)) if i not in bad])
    if not len(rows):
        raise UnreadableSourceError(
            f"The data source 'hf:{spec}' has no readable images ({len(skipped)} row(s) of "
            f"column {image_column!r} are not JPEG, PNG, GIF or BMP images)."
        )
    names = getattr(features[label_column], "names", None) if label_column else None
    labels = rows.labels()
    return Source(
        kind="hf",
        name=f"hf:{name}" + (f"@{revision}" if revision else "") + f"[{split_name}]",
        labels=labels,
        class_names=list(names) if names else None,
        num_classes=len(names)
        if names
        else (int(labels.max()) + 1 if labels is not None else None),
        has_labels=label_column is not None,
        skipped=[(f"hf:{name}[{split_name}] row {i}", why) for i, why in skipped],
        rows=rows,
        cached_count=len(rows),
    )


def _pick_split(loaded, spec: str, split: str, explicit: str | None):
    if not hasattr(loaded, "keys"):  # a saved Dataset: one split
        if explicit is not None:
            raise ValueError(
                f"'hf:{spec}' is a single saved dataset without splits; drop ':{explicit}'."
            )
        if split != "train":
            raise NoTestSplitError(
                f"The data source 'hf:{spec}' is one dataset without a {split!r} split."
            )
        return loaded, "train"
    available = sorted(loaded.keys())
    if explicit is not None:
        if explicit not in loaded:
            raise ValueError(
                f"The data source 'hf:{spec}' has no split {explicit!r}; available: "
                f"{', '.join(available)}. Write e.g. 'hf:NAME:{available[0]}'."
            )
        if split != "train":
            raise NoTestSplitError(
                f"The data source 'hf:{spec}' names one split ({explicit!r}), so it has no "
                f"{split!r} split; leave ':{explicit}' out to use the dataset's splits."
            )
        return loaded[explicit], explicit
    wanted = ("train",) if split == "train" else TEST_SPLIT_NAMES
    found = next((s for s in wanted if s in loaded), None)
    if found is None:
        error = NoTestSplitError if split != "train" else ValueError
        raise error(
            f"The data source 'hf:{spec}' has no {split!r} split (looked for "
            f"{', '.join(wanted)}); available: {', '.join(available)}. Name one with "
            f"'hf:NAME:SPLIT'."
        )
    return loaded[found], found


def _image_column(features, wanted: str | None, spec: str) -> str:
    images = [name for name, feature in features.items() if _is_image(feature)]
    if wanted is not None:
        if wanted not in features:
            raise ValueError(
                f"`data.image_column={wanted!r}` is not a column of 'hf:{spec}'; its columns: "
                f"{', '.join(features)}."
            )
        if not _is_image(features[wanted]):
            raise ValueError(
                f"Column {wanted!r} of 'hf:{spec}' is a {features[wanted]!r}, not an image. "
                f"Image columns: {', '.join(images) or 'none'}; set `data.image_column` to one."
            )
        return wanted
    if not images:
        raise UnreadableSourceError(
            f"The data source 'hf:{spec}' has no image column (a `datasets.Image` feature) "
            f"among {', '.join(features)}. Set `data.image_column` to the column holding images."
        )
    return images[0]


def _label_column(features, wanted: str | None, spec: str) -> str | None:
    labels = [name for name, feature in features.items() if _is_class_label(feature)]
    if wanted is None:
        return labels[0] if labels else None
    if wanted not in features:
        raise ValueError(
            f"`data.label_column={wanted!r}` is not a column of 'hf:{spec}'; its columns: "
            f"{', '.join(features)}."
        )
    dtype = getattr(features[wanted], "dtype", "")
    if not (_is_class_label(features[wanted]) or str(dtype).startswith(("int", "uint"))):
        raise ValueError(
            f"Column {wanted!r} of 'hf:{spec}' is a {features[wanted]!r}, not a class label "
            "(a ClassLabel or integer column); set `data.label_column` to one."
        )
    return wanted


def _is_image(feature) -> bool:
    return type(feature).__name__ == "Image"


def _is_class_label(feature) -> bool:
    return type(feature).__name__ == "ClassLabel"


def _validate(rows: HFRows, spec: str) -> list[tuple[int, str]]:
    """`(kept-row position, reason)` of every row whose image fails `probe_image_bytes`."""
    column = rows.dataset.with_format("arrow")[rows.image_column]
    skipped = []
    position = 0
    for chunk in column.chunks:
        datas, paths = chunk.field("bytes").to_pylist(), chunk.field("path").to_pylist()
        for data, path in zip(datas, paths, strict=True):
            if data is not None:
                reason = probe_image_bytes(data[:16], data[-16:], len(data))
            elif path:
                reason = probe_image_file(path)
            else:
                reason = "no image bytes and no path"
            if reason is not None:
                skipped.append((position, reason))
            position += 1
    return skipped
