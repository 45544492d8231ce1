"""`benchmarks/gradient_cache.py --quick` runs and prints the JSON the full run prints."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "gradient_cache.py"


@pytest.mark.slow  # two subprocesses that import TensorFlow and trace a step: ~1 min
def test_quick_run_reports_memory_and_ratios():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["benchmark"] == "gradient_cache"
    modes = {(r["mode"], r["batch"], r["chunk"]) for r in report["results"]}
    assert modes == {("plain", 16, None), ("gradient_cache", 32, 16)}
    for result in report["results"]:
        assert "error" not in result, result
        assert result["peak_rss_mb"] >= result["built_rss_mb"] > 100
        assert result["step_seconds"] > 0 and result["loss"] > 0
    ratios = report["ratios"]["gradient_cache 32 chunk 16"]
    assert set(ratios) == {"peak_rss / plain 16", "ms_per_image / plain 16"}
    assert report["largest_plain_batch_that_fits"] == 16
