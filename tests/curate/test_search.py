"""The blocked similarity search equals the dense NumPy one, at any block size."""

from __future__ import annotations

import numpy as np
import pytest

from kclr.curate import search


def _dense_pairs(x, threshold):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    similarity = x.astype(np.float64) @ x.T.astype(np.float64)
    i, j = np.nonzero(np.triu(similarity >= threshold, k=1))
    return {(int(a), int(b)): similarity[a, b] for a, b in zip(i, j, strict=True)}


def _clustered(n=203, d=16, seed=0):
    """Points around a few centres, so that many pairs cross each threshold."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(7, d))
    return (centres[rng.integers(7, size=n)] + 0.35 * rng.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("block_size", [9, 64, 202, 203, 4096])
def test_pairs_above_equals_the_dense_search_across_block_boundaries(block_size):
    x = _clustered()
    threshold = 0.9
    dense = _dense_pairs(x, threshold)
    # Leave out the pairs within float32 rounding of the threshold (either answer is right).
    borderline = {k for k, v in dense.items() if abs(v - threshold) < 1e-5}
    i, j, s = search.pairs_above(x, threshold, block_size=block_size)
    found = {(int(a), int(b)) for a, b in zip(i, j, strict=True)}
    assert len(dense) > 500  # many pairs, spread over many tiles
    assert found - borderline == set(dense) - borderline
    assert (i < j).all()
    np.testing.assert_allclose(
        s, [dense[(int(a), int(b))] for a, b in zip(i, j, strict=True)], atol=1e-5
    )
    assert (np.diff(s) <= 0).all()  # most similar first


def test_pairs_above_is_the_same_at_every_block_size():
    x = _clustered(seed=1)
    i, j, s = search.pairs_above(x, 0.95, block_size=4096)
    reference = dict(zip(zip(i.tolist(), j.tolist(), strict=True), s.tolist(), strict=True))
    assert len(reference) > 20
    for block_size in (5, 50, 101):
        i, j, s = search.pairs_above(x, 0.95, block_size=block_size)
        got = dict(zip(zip(i.tolist(), j.tolist(), strict=True), s.tolist(), strict=True))
        assert got.keys() == reference.keys()  # the same pairs (no value near 0.95 here)
        # Tiles of other shapes sum in another order: the last bit may differ.
        np.testing.assert_allclose([got[k] for k in reference], list(reference.values()), atol=1e-6)


def test_pairs_above_stops_when_the_threshold_lists_too_many_pairs():
    x = _clustered()
    with pytest.raises(ValueError, match="max_pairs=100 pairs.*Raise it"):
        search.pairs_above(x, -0.5, block_size=16, max_pairs=100)


@pytest.mark.parametrize("block_size", [1, 5, 64, 4096])
def test_top_k_equals_numpy(block_size):
    rng = np.random.default_rng(2)
    base = rng.normal(size=(97, 8)).astype(np.float32)
    queries = rng.normal(size=(13, 8)).astype(np.float32)
    s, idx = search.top_k(queries, base, 4, block_size=block_size)
    nb = base / np.linalg.norm(base, axis=1, keepdims=True)
    nq = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    dense = nq @ nb.T
    want = np.argsort(-dense, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_allclose(s, np.take_along_axis(dense, want, 1), atol=1e-6)


def test_top_k_excludes_each_row_itself():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 6)).astype(np.float32)
    _, idx = search.top_k(x, x, 3, block_size=7, exclude_self=True)
    assert not (idx == np.arange(50)[:, None]).any()
    nx = x / np.linalg.norm(x, axis=1, keepdims=True)
    dense = nx @ nx.T
    np.fill_diagonal(dense, -np.inf)
    np.testing.assert_array_equal(idx, np.argsort(-dense, axis=1, kind="stable")[:, :3])


def test_search_errors_name_the_bad_argument():
    with pytest.raises(ValueError, match=r"2-D array \[N, D\]"):
        search.pairs_above(np.zeros(5), 0.9)
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        search.pairs_above(np.ones((3, 2)), 0.9, block_size=0)
    with pytest.raises(ValueError, match="k must be between 1 and 2"):
        search.top_k(np.ones((3, 2)), np.ones((3, 2)), 3, exclude_self=True)
