"""benchmarks/curate_scale.py and the scoring of benchmarks/curate_quality.py, at tiny sizes."""

import pathlib
import sys

import numpy as np
import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import curate_quality  # noqa: E402
import curate_scale  # noqa: E402


def test_scale_measurements_blocked_equals_dense_and_report_memory():
    # In this process (the benchmark runs each in a child, which costs a TensorFlow start).
    dense = curate_scale.measure("dense", 2500, 32, 512)
    blocked = curate_scale.measure("blocked", 2500, 32, 512)
    assert dense["pairs"] == blocked["pairs"] == 100  # the planted pairs, no others
    assert dense["pair_hash"] == blocked["pair_hash"]
    assert blocked["n"] == 2500 and blocked["seconds"] > 0
    assert blocked["features_mib"] == round(2500 * 32 * 4 / 2**20, 1)
    assert blocked["dense_matrix_mib"] == round(2500**2 * 4 / 2**20, 1)


@pytest.mark.slow
def test_scale_benchmark_at_a_million_features_stays_within_the_block():
    report = curate_scale.main(["--sizes", "100000", "--million"])
    assert report["baseline"]["same_pairs"] is True
    million = report["blocked"][-1]
    assert million["n"] == 1_000_000 and million["pairs"] >= 100
    # One copy of the features and a few tiles, not N^2 (a dense matrix would be 3.7 TiB).
    assert million["search_peak_extra_mib"] < million["features_mib"] + 1024


def test_hash_codes_and_hamming_pairs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for k in range(4):
        pixels = rng.integers(0, 256, size=(28, 28), dtype=np.uint8)
        paths.append(str(tmp_path / f"{k}.png"))
        Image.fromarray(pixels).save(paths[-1])
    Image.open(paths[0]).save(tmp_path / "same.png")
    paths.append(str(tmp_path / "same.png"))
    codes = curate_quality._hashes(paths)
    for signs in codes.values():
        assert signs.shape == (5, 64) and set(np.unique(signs)) == {-1.0, 1.0}
        i, j, d = curate_quality._hamming_pairs(signs, 0, block=2)
        assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 4)] and d.tolist() == [0]


def test_found_share_needs_the_source_alone_as_the_closest_partner():
    copies = [(3, 0, "jpeg"), (4, 1, "jpeg"), (5, 2, "resized")]
    i = np.array([0, 1, 2, 1, 0])
    j = np.array([3, 4, 5, 5, 1])
    s = np.array([0.99, 0.97, 0.96, 0.98, 0.95])
    scores = curate_quality._scores(6, i, j, s, copies, higher_is_closer=True)
    # Copy 5's closest partner is 1, not its source 2.
    assert scores["found"] == {"jpeg": 1.0, "resized": 0.0}
    assert scores["planted_pairs_listed"] == 3 and scores["pairs_of_two_originals"] == 1
    assert scores["other_pairs"] == 1 and scores["pairs_listed"] == 5


def test_probe_accuracy_on_separable_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 16)) * 4
    labels = np.repeat(np.arange(10), 30)
    x = centres[labels] + rng.normal(size=(300, 16))
    chosen = np.arange(0, 300, 15)  # two per class
    assert curate_quality.probe_accuracy(x, labels, chosen) > 0.95
