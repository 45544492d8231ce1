"""Shared fixtures for workflow tests: one tiny pretraining run reused by several tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A 2-step `tiny` preset run (in-process); returns the FitResult."""
    from kclr.run import config
    from kclr.run import fit as runs

    cfg = config.resolve("tiny")
    out = tmp_path_factory.mktemp("tiny") / "run"
    return runs.fit(cfg, out=out, verbose=0)
