"""The quickstart promise: the demo preset beats raw pixels and a random encoder by >= 15 kNN
points, within 5 minutes on 2 CPU cores."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_demo_preset_beats_both_baselines_by_15_points(tmp_path):
    from kclr.run import config
    from kclr.run import fit as runs

    result = runs.fit(config.resolve("demo"), out=tmp_path / "demo", verbose=0)
    knn = result.knn
    assert set(knn) == {"raw_pixels", "random_encoder", "pretrained_encoder"}
    assert knn["pretrained_encoder"] >= knn["raw_pixels"] + 15.0, knn
    assert knn["pretrained_encoder"] >= knn["random_encoder"] + 15.0, knn
    assert (tmp_path / "demo" / "curves.png").exists()
    assert result.seconds < 300, f"the quickstart took {result.seconds:.0f}s (promise: 5 minutes)"
