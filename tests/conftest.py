"""Shared test set-up: quiet TensorFlow, four logical CPU devices, official reference data."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _split_cpu() -> None:
    """Splits the CPU into 4 logical devices so MirroredStrategy tests run for real.

    Most distribution tests use the first 2; the gradient-cache equivalence test uses 4.
    """
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * 4
        )
    except RuntimeError:  # already initialised (e.g. by a plugin import); keep what is there
        pass


_split_cpu()


def find_reference_dir() -> pathlib.Path | None:
    """The authors' reference data: $KCLR_REFERENCE_DIR, or ../shared/reference beside the repo."""
    candidates = [os.environ.get("KCLR_REFERENCE_DIR"), REPO_ROOT.parent / "shared" / "reference"]
    for candidate in candidates:
        if candidate and (pathlib.Path(candidate) / "golden_simclr_official.json").exists():
            return pathlib.Path(candidate)
    return None


@pytest.fixture(scope="session")
def reference_dir() -> pathlib.Path:
    path = find_reference_dir()
    if path is None:
        pytest.skip("official reference data not found: set KCLR_REFERENCE_DIR")
    return path


@pytest.fixture(scope="session")
def golden(reference_dir: pathlib.Path) -> dict:
    return json.loads((reference_dir / "golden_simclr_official.json").read_text())


@pytest.fixture(scope="session")
def mirrored_strategy_2():
    """One MirroredStrategy over 2 logical CPUs, shared by the tests outside tests/distribute."""
    import tensorflow as tf

    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("needs 2 logical CPU devices")
    return tf.distribute.MirroredStrategy([d.name for d in devices[:2]])


@pytest.fixture(scope="session")
def mirrored_strategy_4():
    """A MirroredStrategy over 4 logical CPUs, for the gradient-cache equivalence tests."""
    import tensorflow as tf

    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 4:
        pytest.skip("needs 4 logical CPU devices (_split_cpu above)")
    # Reduction through one device, not collective ops: collective group keys would clash
    # with the 2-replica strategy that other tests create in the same process.
    return tf.distribute.MirroredStrategy(
        [d.name for d in devices[:4]],
        cross_device_ops=tf.distribute.ReductionToOneDevice(),
    )


@pytest.fixture
def floatx(request):
    """Sets Keras's float type and dtype policy to `request.param` (indirect parametrize)."""
    import keras

    keras.config.set_floatx(request.param)
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")
