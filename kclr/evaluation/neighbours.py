"""Pictures of what a representation learned: nearest-neighbour grids and a 2-D embedding.

- `nearest_neighbours`: the k most cosine-similar examples of some query examples (NumPy);
- `pca_2d`: the first two principal components of the features (NumPy SVD);
- `plot_neighbours_grid`: one row per query, the query then its neighbours, each with its
  label and similarity, framed green when its label is the query's and red when not;
- `plot_embedding`: the 2-D PCA projection coloured by label;
- `write_neighbours`: from an encoder and a data source to those PNGs (what
  `kclr eval neighbours` and `kclr fit` run).

The features are those of `kclr.evaluation.extract_features` (frozen encoder, BatchNorm in
inference mode) on images prepared with the `"eval"` recipe, as for kNN and linear
evaluation. The plots use matplotlib's Agg backend, so no display is needed.

Example:

```python
import kclr
from kclr.evaluation import neighbours

encoder = kclr.zoo.load("runs/demo/export")
info = neighbours.write_neighbours(encoder, "demo", "grid.png", embedding_plot="pca.png")
info["match_rate"]  # fraction of the shown neighbours with the query's label
```
"""

from __future__ import annotations

import io
import math
import os
import pathlib
from typing import Any

import numpy as np

from kclr.durable import atomic_write
from kclr.evaluation.features import extract_features

# The grid's geometry in pixels (at `DPI`): one cell is an image with two lines of text
# below it; the header holds the title. `grid_pixel_size` gives the PNG's size.
DPI = 100
CELL_WIDTH = 120
CELL_HEIGHT = 150
HEADER_HEIGHT = 60
THUMBNAIL_SIDE = 112  # images are kept at most this large for the grid (memory)

MATCH_COLOUR = "#2ca02c"
MISMATCH_COLOUR = "#d62728"
QUERY_COLOUR = "#1f77b4"
UNKNOWN_COLOUR = "#7f7f7f"


# ------------------------------------------------------------------------------ NumPy
def nearest_neighbours(features: np.ndarray, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` nearest neighbours of some examples by cosine similarity, themselves excluded.

    Args:
        features: `[N, D]` features (any scale: they are L2-normalised here; a zero
            vector has similarity 0 with everything).
        queries: `[Q]` indices into `features` of the query examples.
        k: neighbours per query, at most `N - 1`.

    Returns:
        `(indices, similarities)`, both `[Q, k]`, most similar first: `indices[i, j]` is
        the index in `features` of the `j`-th neighbour of query `i`, never `queries[i]`.

    Example:

    ```python
    features = np.random.default_rng(0).normal(size=(100, 16))
    indices, similarities = nearest_neighbours(features, [0, 5], k=3)
    indices.shape  # (2, 3)
    ```
    """
    features = np.asarray(features, np.float64)
    queries = np.asarray(queries, np.int64).reshape(-1)
    if features.ndim != 2:
        raise ValueError(f"features must have shape [N, D]; received shape {features.shape}.")
    count = len(features)
    if not 1 <= int(k) <= count - 1:
        raise ValueError(
            f"k must be between 1 and N - 1 = {count - 1} (the query itself is excluded); "
            f"received k={k} for {count} examples."
        )
    if queries.size and (queries.min() < 0 or queries.max() >= count):
        raise ValueError(
            f"Query indices must be in [0, {count}); received {queries.min()}..{queries.max()}."
        )
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = features / np.maximum(norms, 1e-12)
    sims = unit[queries] @ unit.T  # [Q, N]
    sims[np.arange(len(queries)), queries] = -np.inf  # never the query itself
    k = int(k)
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # [Q, k], unordered
    order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
    indices = np.take_along_axis(top, order, axis=1)
    return indices, np.take_along_axis(sims, indices, axis=1).astype(np.float32)


def pca_2d(features: np.ndarray) -> np.ndarray:
    """The projection of `features` on their first two principal components.

    The features are centred, `numpy.linalg.svd` gives the components, and each
    component's sign is fixed so that its largest-magnitude loading is positive (the
    result does not depend on the SVD's sign choice). With fewer than two components
    (one example or one dimension) the missing column is zero.

    Args:
        features: `[N, D]` features.

    Returns:
        `[N, 2]` float32 coordinates; column 0 has the larger variance.
    """
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or not len(features):
        raise ValueError(f"features must have shape [N, D], N >= 1; received {features.shape}.")
    centred = features - features.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2]  # [<=2, D]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    out = np.zeros((len(features), 2))
    out[:, : len(components)] = centred @ components.T
    return out.astype(np.float32)


def match_colours(query_label: int | None, neighbour_labels: Any) -> list[str]:
    """The frame colour of each neighbour: green when its label is the query's, red when
    not, grey when either label is unknown (None or negative).

    Example:

    ```python
    match_colours(3, [3, 1, -1])  # [MATCH_COLOUR, MISMATCH_COLOUR, UNKNOWN_COLOUR]
    ```
    """
    known = query_label is not None and int(query_label) >= 0
    colours = []
    for label in np.asarray(neighbour_labels).reshape(-1):
        if not known or int(label) < 0:
            colours.append(UNKNOWN_COLOUR)
        else:
            colours.append(MATCH_COLOUR if int(label) == int(query_label) else MISMATCH_COLOUR)
    return colours


def label_text(label: int | None, class_names: Any = None) -> str:
    """A label as shown: its class name where known, else the number ("" when unknown)."""
    if label is None or int(label) < 0:
        return ""
    label = int(label)
    if class_names is not None and label < len(class_names):
        return str(class_names[label])
    return str(label)


def grid_pixel_size(queries: int, neighbours: int) -> tuple[int, int]:
    """`(height, width)` in pixels of the grid PNG of `queries` rows x `1 + neighbours` cells."""
    return HEADER_HEIGHT + queries * CELL_HEIGHT, (1 + neighbours) * CELL_WIDTH


# ---------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, plt) -> pathlib.Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, buffer.getvalue())


def _displayable(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def plot_neighbours_grid(
    images: np.ndarray,
    queries: Any,
    indices: np.ndarray,
    similarities: np.ndarray,
    path: str | os.PathLike,
    labels: np.ndarray | None = None,
    class_names: Any = None,
    title: str | None = None,
) -> pathlib.Path:
    """Writes a PNG grid: each row a query image followed by its nearest neighbours.

    Under each image is its label (class name where known) and, for a neighbour, its
    cosine similarity to the query. Neighbours are framed green when their label is the
    query's and red when not (grey without labels); queries are framed blue. The PNG is
    `grid_pixel_size(Q, k)` pixels.

    Args:
        images: `[N, H, W, 3]` images, uint8 or floats in [0, 1].
        queries: `[Q]` indices of the query images.
        indices, similarities: `[Q, k]`, as `nearest_neighbours` returns them.
        path: the PNG to write (atomically).
        labels: `[N]` labels (negative = unknown), or None.
        class_names: names of the labels, or None to show the numbers.
        title: the figure title (e.g. the model and the data).

    Returns:
        The path written.
    """
    plt = _pyplot()
    queries = np.asarray(queries).reshape(-1)
    indices = np.asarray(indices)
    rows, k = indices.shape
    height, width = grid_pixel_size(rows, k)
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    if title:
        fig.text(0.5, 1 - 8 / height, title, ha="center", va="top", fontsize=9, wrap=True)
    pad = 8  # pixels around an image inside its cell; the text goes below
    side = CELL_WIDTH - 2 * pad
    known = np.asarray(labels) if labels is not None else np.full(len(images), -1)
    for row, query in enumerate(queries):
        colours = [QUERY_COLOUR, *match_colours(known[query], known[indices[row]])]
        cells = [query, *indices[row]]
        for col, (index, colour) in enumerate(zip(cells, colours, strict=True)):
            left = col * CELL_WIDTH + pad
            top = HEADER_HEIGHT + row * CELL_HEIGHT + pad
            ax = fig.add_axes(
                [left / width, 1 - (top + side) / height, side / width, side / height]
            )
            ax.imshow(_displayable(images[index]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(4 if col else 3)
            lines = [label_text(known[index], class_names)]
            lines = ["query", *lines] if col == 0 else [*lines, f"{similarities[row, col - 1]:.3f}"]
            text = "\n".join(line for line in lines if line)
            ax.text(0.5, -0.04, text, transform=ax.transAxes, ha="center", va="top",
                    fontsize=7, color="black" if col else QUERY_COLOUR)  # fmt: skip
    return _save(fig, path, plt)


def plot_embedding(
    features: np.ndarray,
    path: str | os.PathLike,
    labels: np.ndarray | None = None,
    class_names: Any = None,
    title: str | None = None,
    max_legend: int = 20,
) -> pathlib.Path:
    """Writes a PNG of the features projected on their first two principal components.

    Points are coloured by label, with a legend of the class names (the first
    `max_legend` classes); without labels (None or all negative) they are one colour.
    The axes say the fraction of the variance each component explains.

    Args:
        features: `[N, D]` features.
        path: the PNG to write (atomically).
        labels: `[N]` labels (negative = unknown), or None.
        class_names: names of the labels, or None to show the numbers.
        title: the figure title.

    Returns:
        The path written.
    """
    plt = _pyplot()
    points = pca_2d(features)
    centred = np.asarray(features, np.float64) - np.asarray(features, np.float64).mean(axis=0)
    total = float((centred**2).sum()) or 1.0
    explained = (points.astype(np.float64) ** 2).sum(axis=0) / total
    fig, ax = plt.subplots(figsize=(7, 6), dpi=DPI)
    known = labels is not None and (np.asarray(labels) >= 0).any()
    if not known:
        ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.6, color=QUERY_COLOUR)
    else:
        labels = np.asarray(labels)
        classes = [int(c) for c in np.unique(labels) if c >= 0]
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for i, label in enumerate(classes):
            mask = labels == label
            ax.scatter(points[mask, 0], points[mask, 1], s=6, alpha=0.7, color=cmap(i % cmap.N),
                       label=label_text(label, class_names) if i < max_legend else None)  # fmt: skip
        if (labels < 0).any():
            mask = labels < 0
            ax.scatter(points[mask, 0], points[mask, 1], s=6, color=UNKNOWN_COLOUR,
                       label="unlabelled")  # fmt: skip
        more = f" (first {max_legend} of {len(classes)})" if len(classes) > max_legend else ""
        ax.legend(title=f"label{more}", fontsize=7, title_fontsize=8, markerscale=2,
                  loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)  # fmt: skip
    ax.set_xlabel(f"PC 1 ({100 * explained[0]:.1f}% of the variance)")
    ax.set_ylabel(f"PC 2 ({100 * explained[1]:.1f}% of the variance)")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path, plt)


# ------------------------------------------------------------------------ end to end
def sample_examples(
    encoder,
    data: Any,
    split: str = "test",
    image_size: int = 224,
    batch_size: int = 256,
    max_examples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Features, small images and labels of a seeded sample of at most `max_examples`.

    A folder without the split is read whole (`kclr.data.holdout.resolve_whole`). The
    source is read with `kclr.data.labelled_dataset` (the `"eval"` recipe), shuffled
    with `seed` (the file list or array indices; TFRecord and TFDS shuffle their shards
    and a buffer), and the first `max_examples` are encoded with `extract_features`.

    Returns:
        A dict with `features` `[n, D]`, `images` `[n, h, w, 3]` (at most
        `THUMBNAIL_SIDE` pixels a side), `labels` `[n]` (None when unlabelled),
        `filenames` (`"index:N"` for arrays), `class_names` (or None), `total` (the size of the split, None when it would have
        to be counted by reading it) and `source` (its description).
    """
    import tensorflow as tf

    from kclr import data as kdata
    from kclr.data import holdout

    if int(max_examples) < 2:
        raise ValueError(f"max_examples must be at least 2; received {max_examples}.")
    source, _ = holdout.resolve_whole(data, split)  # a folder without a split: all of it
    total = len(source) if source.kind in ("files", "arrays") or source.cached_count else None
    dataset = kdata.labelled_dataset(
        source, split, image_size=image_size, batch_size=batch_size, recipe="eval",
        shuffle=True, seed=seed, with_filenames=True,
    ).take(math.ceil(int(max_examples) / int(batch_size)))  # fmt: skip
    features, images, labels, filenames = [], [], [], []
    for batch_images, batch_labels, batch_names in dataset:
        filenames += [name.decode("utf-8", "replace") for name in batch_names.numpy()]
        features.append(extract_features(encoder, batch_images.numpy())["features"])
        small = batch_images
        if max(small.shape[1:3]) > THUMBNAIL_SIDE:
            small = tf.image.resize(small, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), antialias=True)
        images.append(tf.image.convert_image_dtype(small, tf.uint8, saturate=True).numpy())
        labels.append(np.asarray(batch_labels).reshape(-1))
    if not features:
        raise ValueError(f"The {split!r} split of {data!r} gave no images to encode.")
    labels = np.concatenate(labels)[:max_examples].astype(np.int64)
    return {
        "features": np.concatenate(features)[:max_examples],
        "images": np.concatenate(images)[:max_examples],
        "labels": labels if (labels >= 0).any() else None,
        "filenames": filenames[:max_examples],
        "class_names": source.class_names,
        "total": total,
        "source": source.name,
    }


def _check_counts(queries: int, neighbours: int, available: int, where: str) -> None:
    if int(queries) < 1 or int(neighbours) < 1:
        raise ValueError(
            f"queries and neighbours must be at least 1; received queries={queries}, "
            f"neighbours={neighbours}."
        )
    if int(queries) > available:
        raise ValueError(
            f"queries={queries} is more than the {available} images {where}; ask for fewer "
            "queries (--queries) or sample more images (--max-examples)."
        )
    if int(neighbours) > available - 1:
        raise ValueError(
            f"neighbours={neighbours} needs at least {int(neighbours) + 1} images, but there are "
            f"{available} {where}; ask for fewer neighbours (--neighbours) or sample more "
            "images (--max-examples)."
        )


def _extent(count: int, total: int | None, max_examples: int, seed: int) -> str:
    """Which images were searched, in words (for the titles and the log)."""
    if total is not None and total > count:
        return f"a sample of {count} of {total} images (seed {seed})"
    if total is None and count >= max_examples:
        return f"the first {count} images of a shuffled pass (seed {seed})"
    return f"all {count} images"


def write_neighbours(
    encoder,
    data: Any,
    out: str | os.PathLike,
    embedding_plot: str | os.PathLike | None = None,
    queries: int = 8,
    neighbours: int = 8,
    seed: int = 0,
    split: str = "test",
    image_size: int = 224,
    batch_size: int = 256,
    max_examples: int = 2000,
    title: str | None = None,
    sample: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes the nearest-neighbour grid (and the embedding plot) of `encoder` on `data`.

    A seeded sample of at most `max_examples` images of the `split` of `data` is
    encoded (frozen encoder, BatchNorm in inference mode); `queries` of them, drawn with
    `seed`, each get a row with their `neighbours` most cosine-similar images of the
    sample (`plot_neighbours_grid`). With `embedding_plot`, the sample's features are
    also plotted on their first two principal components (`plot_embedding`).

    Args:
        encoder: a `keras.Model` from images to features (e.g. `kclr.zoo.load(...)`).
        data: anything `kclr.data.resolve_source` accepts ('demo', a folder, TFRecord
            shards, 'tfds:NAME', arrays) or a `Source`.
        out: the grid PNG.
        embedding_plot: the embedding PNG, or None for none.
        queries: rows of the grid.
        neighbours: neighbours per row.
        seed: seed of the sample and of the queries.
        split: `"train"` or `"test"`.
        image_size: input side of the encoder.
        batch_size: feature-extraction batch size.
        max_examples: the most images sampled.
        title: the title's first line, e.g. the model (the second says the data).
        sample: `sample_examples(encoder, data, split, ...)` when the caller already has
            it (`kclr fit` shares one with the projector); encoded here when None.

    Returns:
        A dict with `grid` (path), `embedding` (path or None), `num_examples` (the
        sample), `total` (the split's size, or None when unknown), `queries`,
        `neighbours`, `match_rate` (the fraction of the shown neighbours whose label
        is their query's; None without labels) and `extent` (which images, in words).

    Example:

    ```python
    from kclr.evaluation.neighbours import write_neighbours

    encoder = kclr.zoo.load("runs/demo/export")
    write_neighbours(encoder, "demo", "grid.png", image_size=32)
    ```
    """
    _check_counts(queries, neighbours, int(max_examples), f"sampled (max_examples={max_examples})")
    if sample is None:
        sample = sample_examples(encoder, data, split, image_size, batch_size, max_examples, seed)
    count = len(sample["features"])
    _check_counts(queries, neighbours, count, f"in the {split!r} split of {sample['source']!r}")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(count, int(queries), replace=False))
    indices, similarities = nearest_neighbours(sample["features"], chosen, int(neighbours))
    labels = sample["labels"]
    total = sample["total"]
    name = str(sample["source"])
    where = f"{_extent(count, total, max_examples, seed)} of {name}"
    if split not in name:
        where += f" ({split})"
    heading = title or "features"
    grid = plot_neighbours_grid(
        sample["images"], chosen, indices, similarities, out, labels=labels,
        class_names=sample["class_names"],
        title=f"{heading}\nnearest neighbours by cosine similarity among {where}",
    )  # fmt: skip
    embedding = None
    if embedding_plot is not None:
        embedding = plot_embedding(
            sample["features"], embedding_plot, labels=labels, class_names=sample["class_names"],
            title=f"{heading}\nfirst two principal components of the features of {where}",
        )  # fmt: skip
    match_rate = None
    if labels is not None and (labels[chosen] >= 0).any():
        known = labels[chosen] >= 0
        match_rate = float((labels[indices][known] == labels[chosen][known, None]).mean())
    return {
        "grid": grid,
        "embedding": embedding,
        "num_examples": count,
        "total": total,
        "queries": int(queries),
        "neighbours": int(neighbours),
        "match_rate": match_rate,
        "extent": where,
    }
