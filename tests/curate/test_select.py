"""Selection: N distinct paths, seeded, no two near-duplicates; the algorithms on NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

import kclr.curate
from kclr.curate import selection


def _blobs(n_per=60, clusters=5, d=16, seed=0, duplicates=20):
    """Well-separated clusters plus near-copies (cosine > 0.999) of some points."""
    rng = np.random.default_rng(seed)
    centres = 5 * rng.normal(size=(clusters, d))
    x = np.concatenate([c + rng.normal(size=(n_per, d)) for c in centres])
    labels = np.repeat(np.arange(clusters), n_per)
    sources = rng.choice(len(x), size=duplicates, replace=False)
    copies = x[sources] + 0.01 * rng.normal(size=(duplicates, d))
    return (np.concatenate([x, copies]).astype(np.float32),
            np.concatenate([labels, labels[sources]]), sources)  # fmt: skip


def _max_pair_similarity(x, rows):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = x[rows] @ x[rows].T
    np.fill_diagonal(s, -1)
    return s.max()


@pytest.mark.parametrize("method", kclr.curate.METHODS)
def test_selection_returns_n_distinct_paths_seeded_and_reproducible(method):
    x, _, _ = _blobs()
    paths = [f"img{k}.png" for k in range(len(x))]
    first = kclr.curate.select(x, paths, budget=37, method=method, seed=3)
    again = kclr.curate.select(x, paths, budget=37, method=method, seed=3)
    assert len(first.paths) == len(set(first.paths)) == 37
    assert first.paths == again.paths
    assert first.paths == [paths[i] for i in first.indices]
    other = kclr.curate.select(x, paths, budget=37, method=method, seed=4)
    assert other.paths != first.paths  # the seed matters (k-means, first pick, draw)


@pytest.mark.parametrize("method", kclr.curate.METHODS)
def test_near_duplicates_are_never_both_selected(method):
    x, _, sources = _blobs(n_per=8, duplicates=20)  # 40 originals, 20 near-copies
    # Asking for every original: any copy chosen would leave one original out.
    chosen = selection.select_indices(x, 40, method, threshold=0.99, seed=0)
    assert _max_pair_similarity(x, chosen) < 0.99
    with pytest.raises(kclr.curate.BudgetError, match="Only 40 of 60 images can be picked"):
        selection.select_indices(x, 41, method, threshold=0.99, seed=0)


def test_kcenter_greedy_equals_a_numpy_reference():
    x, _, _ = _blobs(duplicates=0)
    chosen = selection.kcenter_greedy(x, 12, labelled=[5, 100])
    nx = x / np.linalg.norm(x, axis=1, keepdims=True)
    centres, want = [5, 100], []
    for _ in range(12):
        distance = ((nx[:, None, :] - nx[None, centres, :]) ** 2).sum(-1).min(1)
        want.append(int(np.argmax(distance)))
        centres.append(want[-1])
    np.testing.assert_array_equal(chosen, want)


def test_typicality_equals_the_inverse_mean_knn_distance():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    nx = x / np.linalg.norm(x, axis=1, keepdims=True)
    distance = np.sqrt(((nx[:, None] - nx[None]) ** 2).sum(-1))
    np.fill_diagonal(distance, np.inf)
    want = 1 / (np.sort(distance, axis=1)[:, :7].mean(1) + 1e-5)
    np.testing.assert_allclose(selection.typicality(x, 7, block_size=9), want, rtol=1e-4)
    # k is capped at half the rows, as the authors do for small clusters.
    np.testing.assert_allclose(selection.typicality(x[:6], 20)[:1],
                               1 / (np.sort(distance[:6, :6], 1)[:1, :3].mean(1) + 1e-5),
                               rtol=1e-4)  # fmt: skip


def test_kmeans_recovers_separated_clusters():
    x, labels, _ = _blobs(duplicates=0)
    assignments, centres = selection.kmeans(x, 5, seed=0)
    assert centres.shape == (5, 16)
    # Each found cluster is one true cluster.
    for c in range(5):
        assert len(set(labels[assignments == c])) == 1


def test_typiclust_covers_every_cluster_with_its_typical_points():
    x, labels, _ = _blobs(duplicates=0)
    chosen = selection.typiclust(x, 5, seed=0)
    assert sorted(labels[chosen]) == [0, 1, 2, 3, 4]
    # Each pick is the most typical point of its cluster.
    for index in chosen:
        members = np.flatnonzero(labels == labels[index])
        scores = selection.typicality(x[members])
        assert members[np.argmax(scores)] == index


def test_selection_around_a_labelled_set_skips_it_and_its_clusters(tmp_path):
    x, labels, _ = _blobs(duplicates=0)
    paths = [f"img{k}.png" for k in range(len(x))]
    labelled = [paths[k] for k in np.flatnonzero(labels < 3)[::20]]  # clusters 0-2 covered
    listing = tmp_path / "labelled.txt"
    listing.write_text("\n".join(labelled) + "\n")
    chosen = kclr.curate.select(x, paths, budget=2, labelled=listing)
    assert not set(chosen.paths) & set(labelled)
    assert sorted(labels[chosen.indices]) == [3, 4]  # the uncovered clusters first
    k = kclr.curate.select(x, paths, budget=2, method="kcenter", labelled=labelled)
    assert not set(k.paths) & set(labelled)


def test_selection_errors_name_the_input_and_the_fix(tmp_path):
    x, _, _ = _blobs(n_per=4, clusters=2, duplicates=0)
    paths = [f"img{k}.png" for k in range(len(x))]
    with pytest.raises(kclr.curate.BudgetError, match="budget=9 is larger than the 8 .*--budget"):
        kclr.curate.select(x, paths, budget=9)
    with pytest.raises(kclr.curate.BudgetError, match="larger than the 7 unlabelled"):
        kclr.curate.select(x, paths, budget=8, labelled=["img0.png"])
    with pytest.raises(kclr.curate.CurateInputError, match="'nope.png'.*include the labelled"):
        kclr.curate.select(x, paths, budget=2, labelled=["nope.png"])
    with pytest.raises(kclr.curate.CurateInputError, match="does not exist"):
        kclr.curate.select(x, paths, budget=2, labelled=str(tmp_path / "none.txt"))
    with pytest.raises(kclr.curate.CurateInputError, match="Unknown selection method 'best'"):
        kclr.curate.select(x, paths, budget=2, method="best")
    assert not list(tmp_path.iterdir())


def test_select_writes_exactly_n_lines_and_a_sheet(tmp_path):
    x, _, _ = _blobs()
    paths = [f"img{k}.png" for k in range(len(x))]
    chosen = kclr.curate.select(x, paths, budget=12, out=tmp_path / "out")
    lines = (tmp_path / "out" / "selected.txt").read_text().splitlines()
    assert lines == chosen.paths and len(set(lines)) == 12
    assert (tmp_path / "out" / "selected.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["selected.png", "selected.txt"]
