"""The `Source` type that `resolve_source` returns, and its error.

Shared by the readers of each kind of source (`kclr.data.path_sources`,
`kclr.data.tfds_sources`) and by `kclr.data.sources`, which resolves a user's
specification into a `Source`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

TEST_SPLIT_NAMES = ("test", "val", "validation")


class UnreadableSourceError(ValueError):
    """A data source holds no readable images."""


class NoTestSplitError(ValueError):
    """A folder has no test split (no `test/`, `val/` or `validation/` beside `train/`).

    `kclr.data.holdout` holds out part of such a folder instead.
    """


@dataclasses.dataclass
class Source:
    """A resolved data source (what `resolve_source` returns).

    Attributes:
        kind: `"files"` (image files), `"tfrecord"`, `"arrays"`, `"tfds"` or `"hf"`.
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
        counter: counts the examples of a source that must be read to be counted
            (TFRecord shards, TFDS); set by the reader that made the source.
        cached_count: the number of examples once counted (None: not yet).
        rows: the rows of a Hugging Face dataset (`kclr.data.hf_sources.HFRows`).
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
    counter: Callable[[Source], int] | None = dataclasses.field(
        default=None, repr=False, compare=False
    )
    cached_count: int | None = None
    rows: Any = dataclasses.field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        """The number of examples (counted once for TFRecord shards and TFDS, then cached)."""
        if self.cached_count is None:
            if self.kind == "files":
                self.cached_count = len(self.files)
            elif self.kind == "arrays":
                self.cached_count = len(self.images)
            elif self.kind == "hf":
                self.cached_count = len(self.rows)
            else:
                self.cached_count = self.counter(self)
        return self.cached_count
