"""Folders without a split: a seeded, class-balanced held-out part, or the whole folder.

Most folders of a user's images have class subfolders (`photos/cat`, `photos/dog`) but
no `train/` / `test/` split. Evaluation that needs two disjoint splits (the kNN monitor
of `kclr fit`, `kclr eval knn|linear`) holds out a part of such a folder:
`HOLDOUT_FRACTION` of every class (at least one image of each class with two or more),
chosen by a seeded permutation (`kclr.data.subsets.label_fraction_indices`), so the
same folder and seed always give the same split. The rest is the train split: the
kNN memory bank and, in `kclr fit`, the training images, so that the held-out images
are as unseen as a real test split's. Commands that read one split only
(`kclr extract`, `kclr eval neighbours`) read such a folder whole (`resolve_whole`).

Example:

```python
from kclr.data import holdout

train, test, held = holdout.resolve_splits("photos/")
print(held.describe())   # "'photos' has class subfolders but no train/test split: ..."
```
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from kclr.data.source_types import NoTestSplitError, Source
from kclr.data.sources import resolve_source
from kclr.data.subsets import label_fraction_indices

HOLDOUT_FRACTION = 0.1  # of every class; `eval.holdout_fraction` in a run
HOLDOUT_SEED = 0  # `eval.holdout_seed` in a run
HOLDOUT_MAX_EXAMPLES = 10000  # `eval.monitor_max_examples` in a run

__all__ = [
    "HOLDOUT_FRACTION",
    "HOLDOUT_MAX_EXAMPLES",
    "HOLDOUT_SEED",
    "Holdout",
    "resolve_splits",
    "resolve_whole",
    "split_folder",
]


@dataclasses.dataclass(frozen=True)
class Holdout:
    """A labelled folder split in two: `train` (the rest) and `test` (held out)."""

    train: Source
    test: Source
    fraction: float
    seed: int
    name: str

    @property
    def num_classes(self) -> int:
        return len(np.unique(self.test.labels))

    def describe(self) -> str:
        """The run log's line naming the held-out part."""
        total = len(self.train) + len(self.test)
        return (
            f"{self.name!r} has {'class subfolders' if self.train.kind == 'files' else 'labels'}"
            " but no train/test split: holding out "
            f"{len(self.test)} of {total} images ({self.fraction:.1%} of each of "
            f"{self.num_classes} classes, seed {self.seed}) as the kNN test split; the other "
            f"{len(self.train)} are the train split."
        )

    def record(self) -> dict[str, Any]:
        """What a run writes down about the split (`results.json`)."""
        return {
            "source": self.name, "fraction": self.fraction, "seed": self.seed,
            "held_out": len(self.test), "train": len(self.train), "classes": self.num_classes,
        }  # fmt: skip


def split_folder(
    source: Source,
    fraction: float = HOLDOUT_FRACTION,
    seed: int = HOLDOUT_SEED,
    max_examples: int | None = None,
) -> Holdout:
    """Holds out a seeded `fraction` of every class of a labelled folder `Source` (or of a
    labelled `hf:` dataset of one split).

    Classes with a single image stay whole in the train split (the held-out image would
    have no class mate in the memory bank). With `max_examples`, the held-out part has
    at most that many images (the fraction is lowered, then a seeded sample is kept).

    Raises:
        ValueError: the source is not a labelled folder, or no class has two images.
    """
    if source.kind not in ("files", "hf") or not source.has_labels:
        raise ValueError(
            f"Only a folder of class subfolders can be split for evaluation; {source.name!r} "
            "is not one. Give data with train and test splits."
        )
    fraction = float(fraction)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"The held-out fraction must be in (0, 1); received {fraction}.")
    labels = np.asarray(source.labels)
    counts = np.bincount(labels)
    eligible = np.flatnonzero(counts[labels] >= 2)
    if not len(eligible):
        raise ValueError(
            f"Data folder {source.name!r} has no class with two or more images, so no part "
            "can be held out for evaluation. Add images, or give a folder with train/ and test/."
        )
    if max_examples and fraction * len(eligible) > max_examples:
        fraction = max_examples / len(eligible)
    held = eligible[label_fraction_indices(labels[eligible], fraction, seed)]
    if max_examples and len(held) > max_examples:  # at least one per class went over
        held = np.sort(np.random.default_rng(seed).choice(held, max_examples, replace=False))
    rest = np.setdiff1d(np.arange(len(labels)), held)
    return Holdout(
        train=_subset(source, rest, "train part"),
        test=_subset(source, held, "held-out part"),
        fraction=fraction,
        seed=int(seed),
        name=source.name,
    )


def resolve_splits(
    spec: Any,
    fraction: float = HOLDOUT_FRACTION,
    seed: int = HOLDOUT_SEED,
    max_examples: int | None = HOLDOUT_MAX_EXAMPLES,
) -> tuple[Source, Source, Holdout | None]:
    """`(train, test, holdout)`: the two splits of `spec`, held out when it has none.

    `holdout` is None when `spec` has its own test split.

    Raises:
        NoTestSplitError: `spec` is a flat folder without labels (nothing to hold out by class).
    """
    train = resolve_source(spec, "train")
    try:
        return train, resolve_source(spec, "test"), None
    except NoTestSplitError:
        if not train.has_labels:
            raise NoTestSplitError(
                f"Data folder {train.name!r} holds unlabelled images (no class subfolders) and no "
                "train/test split, and evaluation by kNN or a linear classifier needs labels. "
                "Sort the images into class subfolders (photos/cat/, photos/dog/, ...)."
            ) from None
    held = split_folder(train, fraction, seed, max_examples)
    return held.train, held.test, held


def resolve_whole(spec: Any, split: str) -> tuple[Source, str | None]:
    """`(source, note)`: `split` of `spec`, or the whole folder when it has no split.

    `note` says that the whole folder is read (None when `spec` has the split).
    """
    try:
        return resolve_source(spec, split), None
    except NoTestSplitError:
        source = resolve_source(spec, "train")
        return source, f"{source.name!r} has no {split!r} split: reading all {len(source)} images."


def _subset(source: Source, keep: np.ndarray, what: str) -> Source:
    return dataclasses.replace(
        source,
        files=[source.files[i] for i in keep] if source.files is not None else None,
        rows=source.rows.subset(keep) if source.rows is not None else None,
        labels=source.labels[keep],
        name=f"{source.name}[{what}]",
        skipped=list(source.skipped) if what == "train part" else [],
        cached_count=None,
    )
