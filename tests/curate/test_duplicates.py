"""Planted near-duplicates among random features are found, exact copies by content hash."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import kclr.curate
from kclr.curate.near_duplicates import connected_groups, find_duplicates


def _planted(n=600, d=64, copies=40, seed=0, noise=0.05):
    """Random unit features, plus `copies` noisy copies of distinct rows (cosine ~0.9988)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    sources = rng.choice(n, size=copies, replace=False)
    planted = x[sources] + noise * rng.normal(size=(copies, d))
    features = np.concatenate([x, planted]).astype(np.float32)
    pairs = {(int(s), n + k) for k, s in enumerate(sources)}
    return features, pairs


def test_planted_duplicates_are_found_with_precision_and_recall_one_at_a_margin():
    features, planted = _planted()
    x = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = x @ x.T
    np.fill_diagonal(similarity, 0)
    planted_s = [similarity[a, b] for a, b in planted]
    others = similarity.copy()
    for a, b in planted:
        others[a, b] = others[b, a] = 0
    # The margin: every planted pair is above 0.99, every other pair far below.
    assert min(planted_s) > 0.99 and others.max() < 0.7
    paths = [f"img{k:04d}" for k in range(len(features))]
    for threshold in (0.8, 0.9, 0.98):
        report = find_duplicates(features, paths, threshold=threshold, block_size=97)
        found = {(int(a[3:]), int(b[3:])) for a, b, _ in report.pairs}
        assert found == planted  # precision and recall 1.0
        assert [s for _, _, s in report.pairs] == sorted((s for _, _, s in report.pairs),
                                                         reverse=True)  # fmt: skip
        assert len(report.groups) == len(planted)
        assert all(len(g) == 2 for g in report.groups)


def test_groups_are_connected_components():
    i = np.array([0, 5, 1, 7, 8])
    j = np.array([1, 6, 2, 8, 9])
    assert connected_groups(10, i, j) == [[0, 1, 2], [5, 6], [7, 8, 9]]


def test_identical_files_are_exact_duplicates_and_share_their_pairs(tmp_path):
    rng = np.random.default_rng(1)
    contents = [b"a-bytes", b"a-bytes", b"b-bytes", b"c-bytes", b"a-bytes"]
    paths = []
    for k, data in enumerate(contents):
        path = tmp_path / f"f{k}.png"
        path.write_bytes(data)
        paths.append(str(path))
    base = rng.normal(size=(3, 8))
    # f0/f1/f4 identical; f2 a near-copy of f0 in feature space; f3 unrelated.
    features = np.stack([base[0], base[0], base[0] + 0.01 * base[1], base[2], base[0]])
    report = kclr.curate.duplicates(features, paths, threshold=0.99, out=tmp_path / "out")
    listed = {(a[-6:], b[-6:]) for a, b, _ in report.pairs}
    assert report.exact == 3
    assert listed == {("f0.png", "f1.png"), ("f0.png", "f4.png"), ("f1.png", "f4.png"),
                      ("f0.png", "f2.png"), ("f1.png", "f2.png"), ("f2.png", "f4.png")}  # fmt: skip
    assert report.groups == [[paths[0], paths[1], paths[2], paths[4]]]
    with open(tmp_path / "out" / "duplicates.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["path_a", "path_b", "similarity"] and len(rows) == 7
    assert [float(r[2]) for r in rows[1:4]] == [1.0, 1.0, 1.0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "duplicates.csv", "duplicates.png", "groups.csv"]  # fmt: skip


def test_duplicates_reads_the_files_kclr_extract_writes(tmp_path):
    from kclr.evaluation import save_features

    features, planted = _planted(n=50, copies=3)
    names = np.array([f"index:{k}" for k in range(len(features))])
    save_features(tmp_path / "f.npy", {"features": features, "filenames": names})
    report = kclr.curate.duplicates(tmp_path / "f.npy", threshold=0.95)
    assert {(int(a[6:]), int(b[6:])) for a, b, _ in report.pairs} == planted


def test_duplicates_input_errors_say_what_to_pass(tmp_path):
    with pytest.raises(kclr.curate.CurateInputError, match="or both model= and data="):
        kclr.curate.duplicates()
    with pytest.raises(kclr.curate.CurateInputError, match="need their paths"):
        kclr.curate.duplicates(np.ones((3, 2)))
    with pytest.raises(ValueError, match="3 feature rows but 2 paths"):
        kclr.curate.duplicates(np.ones((3, 2)), ["a", "b"])
    with pytest.raises(ValueError, match=r"cosine similarity in \(-1, 1\]"):
        kclr.curate.duplicates(np.ones((3, 2)), ["a", "b", "c"], threshold=1.5)
    with pytest.raises(kclr.curate.CurateInputError, match="does not exist.*kclr extract"):
        kclr.curate.duplicates(tmp_path / "missing.npy")
    np.save(tmp_path / "lonely.npy", np.ones((2, 2)))
    with pytest.raises(kclr.curate.CurateInputError, match="lonely.filenames.txt' is missing"):
        kclr.curate.duplicates(tmp_path / "lonely.npy")
