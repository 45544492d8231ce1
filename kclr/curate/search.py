"""Blocked cosine-similarity search on the device (CPU or GPU), memory bounded by the block.

Exact search, the whole similarity matrix visited one `[block, block]` tile at a time:

- `pairs_above(features, threshold)`: every pair `i < j` with cosine similarity
  `>= threshold` (the near-duplicate search);
- `top_k(queries, base, k)`: the `k` most similar rows of `base` for each query (kNN for
  typicality, the nearest labelled image, ...).

Besides the features themselves (one L2-normalised copy on the device), memory is a few
tiles of `block_size**2` and the running results, not `N**2`: at the default block of
4,096 a float32 tile is 64 MiB, at any N. Time grows as `N**2 * D`; `benchmarks/curate_scale.py`
measures it and names the size past which an approximate index (faiss, hnswlib) is the
better tool.

TensorFloat-32 (on by default for float32 matrix products on recent NVIDIA GPUs) rounds
inputs to 10 mantissa bits, an error of ~1e-3 in a similarity; it is switched off for the
duration of a search so that a threshold means the same on every device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

DEFAULT_BLOCK_SIZE = 4096


def normalise(features) -> np.ndarray:
    """`features` as float32 rows of unit L2 norm (a zero row stays zero)."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"Features must be a 2-D array [N, D]; received shape {features.shape}.")
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


@contextlib.contextmanager
def _exact_float32() -> Iterator[None]:
    import tensorflow as tf

    previous = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(previous)


def _check_block(block_size: int) -> int:
    if int(block_size) < 1:
        raise ValueError(f"block_size must be >= 1; received {block_size}.")
    return int(block_size)


def pairs_above(
    features,
    threshold: float,
    block_size: int = DEFAULT_BLOCK_SIZE,
    max_pairs: int = 10_000_000,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of rows whose cosine similarity is at least `threshold`.

    Args:
        features: `[N, D]` features (L2-normalised here).
        threshold: the smallest cosine similarity reported.
        block_size: the side of one tile of the similarity matrix.
        max_pairs: stop with an error past this many pairs (a threshold far too low
            for the data would otherwise list a good part of `N**2 / 2` pairs).
        device: a TensorFlow device name (`"/CPU:0"`, `"/GPU:0"`); None lets
            TensorFlow place it (the GPU when there is one).

    Returns:
        `(i, j, similarity)`: int64 `[P]`, int64 `[P]`, float32 `[P]` with `i < j`,
        sorted by similarity (most similar first), then by `i` and `j`.
    """
    import tensorflow as tf

    block = _check_block(block_size)
    x = normalise(features)
    n = len(x)
    found_i, found_j, found_s = [], [], []
    total = 0
    with _exact_float32(), tf.device(device) if device else contextlib.nullcontext():
        xt = tf.constant(x)
        del x  # the device copy is the one searched: one copy of the features, not two
        for r0 in range(0, n, block):
            rows = xt[r0 : r0 + block]
            for c0 in range(r0, n, block):
                tile = tf.matmul(rows, xt[c0 : c0 + block], transpose_b=True)
                keep = tile >= threshold
                if c0 == r0:  # the diagonal tile: only j > i
                    keep = tf.logical_and(keep, tf.linalg.band_part(tf.ones_like(keep), 0, -1))
                    keep = tf.linalg.set_diag(keep, tf.zeros(tf.shape(keep)[0], tf.bool))
                where = tf.where(keep)
                if where.shape[0] == 0:
                    continue
                values = tf.gather_nd(tile, where).numpy()
                where = where.numpy()
                found_i.append(where[:, 0] + r0)
                found_j.append(where[:, 1] + c0)
                found_s.append(values)
                total += len(values)
                if total > max_pairs:
                    raise ValueError(
                        f"More than max_pairs={max_pairs:,} pairs have a similarity >= "
                        f"{threshold}: the threshold is far too low for these features. "
                        "Raise it (e.g. --threshold 0.97) or raise max_pairs."
                    )
    if not found_s:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    i, j, s = np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s)
    order = np.lexsort((j, i, -s))
    return i[order].astype(np.int64), j[order].astype(np.int64), s[order].astype(np.float32)


def top_k(
    queries,
    base,
    k: int,
    block_size: int = DEFAULT_BLOCK_SIZE,
    exclude_self: bool = False,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The `k` rows of `base` most cosine-similar to each query, in blocks.

    Args:
        queries: `[Q, D]` features.
        base: `[N, D]` features.
        k: neighbours per query (at most `N`, or `N - 1` with `exclude_self`).
        block_size: rows of queries and of `base` per tile.
        exclude_self: `queries` is `base` (same rows): a row is not its own neighbour.
        device: a TensorFlow device name, or None.

    Returns:
        `(similarities [Q, k] float32, indices [Q, k] int64)`, most similar first.
    """
    import tensorflow as tf

    block = _check_block(block_size)
    q, b = normalise(queries), normalise(base)
    available = len(b) - (1 if exclude_self else 0)
    if not 1 <= k <= available:
        raise ValueError(f"k must be between 1 and {available}; received {k}.")
    out_s = np.empty((len(q), k), np.float32)
    out_i = np.empty((len(q), k), np.int64)
    with _exact_float32(), tf.device(device) if device else contextlib.nullcontext():
        bt = tf.constant(b)
        size = len(b)
        del b  # searched on the device copy
        for r0 in range(0, len(q), block):
            rows = tf.constant(q[r0 : r0 + block])
            best_s = tf.fill([tf.shape(rows)[0], 0], 0.0)
            best_i = tf.zeros([tf.shape(rows)[0], 0], tf.int64)
            for c0 in range(0, size, block):
                tile = tf.matmul(rows, bt[c0 : c0 + block], transpose_b=True)
                if exclude_self and c0 < r0 + block and r0 < c0 + tile.shape[1]:
                    row_ids = tf.range(r0, r0 + tf.shape(tile)[0])[:, None]
                    col_ids = tf.range(c0, c0 + tf.shape(tile)[1])[None, :]
                    tile = tf.where(row_ids == col_ids, -np.inf, tile)
                kk = min(k, tile.shape[1])
                tile_s, tile_i = tf.math.top_k(tile, kk)
                merged_s = tf.concat([best_s, tile_s], axis=1)
                merged_i = tf.concat([best_i, tf.cast(tile_i, tf.int64) + c0], axis=1)
                keep = min(k, merged_s.shape[1])
                best_s, positions = tf.math.top_k(merged_s, keep)
                best_i = tf.gather(merged_i, positions, batch_dims=1)
            out_s[r0 : r0 + block] = best_s.numpy()
            out_i[r0 : r0 + block] = best_i.numpy()
    return out_s, out_i
