"""Shared set-up of the kclr-mocov3 tests: 2 logical CPUs, the authors' golden values."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]


def _split_cpu() -> None:
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * 4
        )
    except RuntimeError:  # already initialised (kclr's own tests split it the same way)
        pass


_split_cpu()


@pytest.fixture(scope="session")
def moco_golden() -> dict:
    """`golden_moco_v3_official.json`: the authors' functions run with a CPU build of torch."""
    candidates = [os.environ.get("KCLR_REFERENCE_DIR"), REPO_ROOT.parent / "shared" / "reference"]
    for candidate in candidates:
        path = pathlib.Path(candidate) / "golden_moco_v3_official.json" if candidate else None
        if path is not None and path.exists():
            return json.loads(path.read_text())
    pytest.skip("MoCo v3 reference data not found: set KCLR_REFERENCE_DIR")


@pytest.fixture(scope="session")
def two_replicas():
    """A MirroredStrategy over 2 logical CPUs (reduction through one device: no collective
    group keys that could clash with another strategy of the same process)."""
    import tensorflow as tf

    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("needs 2 logical CPU devices")
    return tf.distribute.MirroredStrategy(
        [d.name for d in devices[:2]], cross_device_ops=tf.distribute.ReductionToOneDevice()
    )
