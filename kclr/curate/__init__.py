"""What the features are for: near-duplicates and a diverse subset to label.

- `duplicates(...)`: byte-identical files (content hash), then pairs of images whose
  frozen features have a cosine similarity of at least a threshold, and their groups;
- `select(...)`: `budget` images to label, representative and diverse (TypiClust by
  default, or k-centre greedy), never two near-duplicates, optionally around images
  already labelled;
- `extract(...)`: the features of every image of a source with their paths.

Both take features (an array and its paths, or the `.npy` that `kclr extract` writes),
or a model and a source, and write their report into `out` when given. The command line
is `kclr curate duplicates|select` (docs/curate.md).

Example:

```python
import kclr.curate

report = kclr.curate.duplicates(model="runs/demo/export", data="photos/", out="curation")
report.pairs[:3]    # [(path_a, path_b, similarity), ...], most similar first
chosen = kclr.curate.select("features.npy", budget=100, out="curation")
chosen.paths[:3]
```
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from kclr.curate.features import CurateInputError, extract, load_features, open_encoder
from kclr.curate.near_duplicates import (
    DEFAULT_THRESHOLD,
    DuplicateReport,
    content_hashes,
    find_duplicates,
)
from kclr.curate.search import DEFAULT_BLOCK_SIZE
from kclr.curate.selection import DEFAULT_METHOD, METHODS, BudgetError, select_indices

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_THRESHOLD",
    "METHODS",
    "BudgetError",
    "CurateInputError",
    "DuplicateReport",
    "Selection",
    "duplicates",
    "extract",
    "open_encoder",
    "load_features",
    "select",
]


@dataclasses.dataclass
class Selection:
    """The images chosen to label.

    Attributes:
        paths: the chosen paths, in the order picked.
        indices: their rows in the features.
        method: the selection method.
        files: the files written (empty without `out`).
    """

    paths: list[str]
    indices: np.ndarray
    method: str
    files: list[str] = dataclasses.field(default_factory=list)


def _inputs(features, paths, model, data, extract_args) -> tuple[np.ndarray, list[str], Any]:
    """`(features, paths, images)` from arrays, a `kclr extract` file, or a model and data."""
    if features is None:
        if model is None or data is None:
            raise CurateInputError(
                "Pass features (an array with its paths, or a `kclr extract` .npy file), "
                "or both model= and data=."
            )
        out = extract(model, data, **extract_args)
        return out["features"], out["paths"].tolist(), out.get("images")
    if isinstance(features, (str, os.PathLike)):
        loaded, names = load_features(features)
        return loaded, list(paths) if paths is not None else names, None
    if paths is None:
        raise CurateInputError(
            "Features given as an array need their paths (paths=[...], one per row)."
        )
    return np.asarray(features), [str(p) for p in paths], None


def duplicates(
    features: Any = None,
    paths: Any = None,
    *,
    model: Any = None,
    data: Any = None,
    threshold: float = DEFAULT_THRESHOLD,
    exact: bool = True,
    out: str | os.PathLike | None = None,
    image_size: int | None = None,
    batch_size: int = 256,
    split: str = "train",
    skip_unreadable: bool = False,
    block_size: int = DEFAULT_BLOCK_SIZE,
    device: str | None = None,
) -> DuplicateReport:
    """Near-duplicate pairs and groups, written to `out` when given.

    Args:
        features: `[N, D]` features, or the path of a `.npy` written by `kclr extract`
            (its `.filenames.txt` gives the paths); None to extract them with `model`.
        paths: `[N]` paths of the feature rows (read beside a `.npy` when omitted).
        model, data: an encoder (or zoo reference) and a source, when `features` is None.
        threshold: the smallest cosine similarity of a near-duplicate pair.
        exact: first find byte-identical files by content hash (paths that are files).
        out: a folder for `duplicates.csv`, `groups.csv` and `duplicates.png` (all
            written, or none).
        image_size, batch_size, split, skip_unreadable: of the extraction (`extract`).
        block_size, device: of the blocked similarity search.

    Returns:
        A `DuplicateReport` (its `files` lists what was written).
    """
    from kclr.curate import report as files
    from kclr.curate.staging import staged

    extract_args = dict(image_size=image_size, batch_size=batch_size, split=split,
                        skip_unreadable=skip_unreadable)  # fmt: skip
    x, names, images = _inputs(features, paths, model, data, extract_args)
    hashes = content_hashes(names) if exact else None
    result = find_duplicates(x, names, threshold, hashes, block_size, device)
    if out is not None:
        with staged(out) as folder:
            written = files.write_duplicates(folder, result, images)
        result.files = [os.path.join(os.fspath(out), p.name) for p in written]
    return result


def _labelled_indices(labelled: Any, paths: list[str]) -> list[int]:
    """Rows of `paths` named by `labelled` (a text file of paths, or a list of paths)."""
    if labelled is None:
        return []
    source = "labelled"
    if isinstance(labelled, (str, os.PathLike)):
        source = os.fspath(labelled)
        if not os.path.isfile(labelled):
            raise CurateInputError(
                f"Labelled list {os.fspath(labelled)!r} does not exist; pass a text file with "
                "one image path per line."
            )
        with open(labelled, encoding="utf-8") as handle:
            labelled = [line.strip() for line in handle if line.strip()]
    exact = {p: i for i, p in enumerate(paths)}
    absolute = {os.path.abspath(p): i for i, p in enumerate(paths)}
    rows, missing = [], []
    for name in labelled:
        name = str(name)
        row = exact.get(name, absolute.get(os.path.abspath(name)))
        if row is None:
            missing.append(name)
        else:
            rows.append(row)
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CurateInputError(
            f"{len(missing)} image(s) of the labelled list {source!r} are not among the images "
            f"to choose from: {shown}{more}. List paths as `kclr extract` and selected.txt "
            "write them, and include the labelled images in --data."
        )
    return rows


def select(
    features: Any = None,
    paths: Any = None,
    *,
    budget: int,
    model: Any = None,
    data: Any = None,
    method: str = DEFAULT_METHOD,
    labelled: Any = None,
    threshold: float = DEFAULT_THRESHOLD,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    image_size: int | None = None,
    batch_size: int = 256,
    split: str = "train",
    skip_unreadable: bool = False,
) -> Selection:
    """`budget` distinct images to label, written to `out` when given.

    Args:
        features, paths, model, data: as for `duplicates`.
        budget: how many images to choose (besides the labelled ones).
        method: `"typiclust"` (default), `"kcenter"` or `"random"`.
        labelled: images already labelled: a text file with one path per line, or a list
            of paths (all among the images to choose from). Their clusters count as
            covered; they and their near-duplicates are not chosen again.
        threshold: two images at least this cosine-similar are never both chosen.
        seed: of k-means (TypiClust), the first pick (k-centre) or the draw (random).
        out: a folder for `selected.txt` and `selected.png` (both written, or none).
        image_size, batch_size, split, skip_unreadable: of the extraction (`extract`).

    Returns:
        A `Selection`.
    """
    from kclr.curate import report as files
    from kclr.curate.staging import staged

    if method not in METHODS:
        raise CurateInputError(
            f"Unknown selection method {method!r}; expected one of {', '.join(METHODS)}."
        )
    extract_args = dict(image_size=image_size, batch_size=batch_size, split=split,
                        skip_unreadable=skip_unreadable)  # fmt: skip
    x, names, images = _inputs(features, paths, model, data, extract_args)
    rows = _labelled_indices(labelled, names)
    indices = select_indices(x, budget, method, rows, threshold, seed)
    chosen = [names[i] for i in indices]
    result = Selection(paths=chosen, indices=indices, method=method)
    if out is not None:
        with staged(out) as folder:
            written = files.write_selection(folder, chosen, method, images)
        result.files = [os.path.join(os.fspath(out), p.name) for p in written]
    return result
