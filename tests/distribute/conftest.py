"""Fixtures of the distribution tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mirrored_strategy(mirrored_strategy_2):
    """One MirroredStrategy over 2 logical CPUs for the whole session.

    Several MirroredStrategy objects in one process can reuse collective instance
    keys with different dtypes (TensorFlow then aborts the collective), so the
    tests share one: `mirrored_strategy_2` of tests/conftest.py.
    """
    return mirrored_strategy_2
