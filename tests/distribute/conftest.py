"""Fixtures of the distribution tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over 2 logical CPUs for the whole session.

    Several MirroredStrategy objects in one process can reuse collective instance
    keys with different dtypes (TensorFlow then aborts the collective), so the
    tests share one.
    """
    import tensorflow as tf

    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("needs 2 logical CPU devices (tests/conftest.py splits the CPU)")
    return tf.distribute.MirroredStrategy([d.name for d in devices[:2]])
