"""Label fractions: deterministic per-class subsets and the official ImageNet subset files."""

from __future__ import annotations

import os
import pathlib

import numpy as np


def label_fraction_indices(labels, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of a deterministic `fraction` of the examples of every class.

    For semi-supervised evaluation with 1% / 10% of the labels (Chen et al., 2020,
    section 6; SimCLRv2). Each class keeps `max(1, round(fraction * n_class))` examples,
    chosen by a seeded permutation, so the same labels and seed always give the same
    subset. (The official ImageNet 1% / 10% lists are files of image names: pass them
    with `subset_file=` instead, see `read_subset_file`.)

    Args:
        labels: int array `[N]`.
        fraction: in `(0, 1]`, e.g. 0.01 or 0.1.
        seed: seed of the per-class permutations.

    Returns:
        sorted int64 array of selected indices.

    Example:

    ```python
    idx = kclr.data.subsets.label_fraction_indices(labels, 0.1)
    ```
    """
    fraction = float(fraction)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(
            f"label_fraction must be in (0, 1]; received {fraction}. Use 0.01 for 1% or "
            "0.1 for 10% of the labels."
        )
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        keep = max(1, int(round(fraction * len(members))))
        chosen.append(members[rng.permutation(len(members))[:keep]])
    if not chosen:
        return np.zeros([0], np.int64)
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def read_subset_file(path: str | os.PathLike) -> set[str]:
    """Reads an image-subset file: one file name per line (e.g. `n01440764_10026.JPEG`).

    The format of the official ImageNet `1percent.txt` / `10percent.txt` lists. Blank
    lines and `#` comments are ignored; directories in a line are dropped (only the base
    name is matched).

    Example:

    ```python
    names = kclr.data.subsets.read_subset_file("1percent.txt")
    ```
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Subset file {str(path)!r} does not exist. Expected a text file with one image "
            "file name per line (e.g. n01440764_10026.JPEG)."
        )
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(os.path.basename(line))
    if not names:
        raise ValueError(f"Subset file {str(path)!r} lists no file names.")
    return names
