"""kclr.distribute: strategy resolution and the global-batch check."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest
import tensorflow as tf

import kclr

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from kclr_tiny import tiny_data, tiny_trainer  # noqa: E402


def test_auto_is_default_on_a_cpu_machine(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("TPU_NAME", raising=False)
    strategy = kclr.distribute.get_strategy("auto")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert kclr.distribute.get_strategy("default") is strategy


def test_auto_prefers_multiworker_when_tf_config_names_workers(monkeypatch):
    calls = []
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps(
            {
                "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                "task": {"type": "worker", "index": 0},
            }
        ),
    )
    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.setattr(
        tf.distribute, "MultiWorkerMirroredStrategy", lambda **kw: calls.append(kw) or "mwms"
    )
    assert kclr.distribute.get_strategy("auto") == "mwms"
    assert len(calls) == 1


def test_auto_prefers_tpu_when_configured(monkeypatch):
    monkeypatch.setenv("TPU_NAME", "my-tpu")
    seen = {}

    class FakeResolver:
        def __init__(self, tpu):
            seen["tpu"] = tpu

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", FakeResolver)
    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster", lambda r: None)
    monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system", lambda r: None)
    monkeypatch.setattr(tf.distribute, "TPUStrategy", lambda r: ("tpu", r))
    kind, resolver = kclr.distribute.get_strategy("auto")
    assert kind == "tpu" and isinstance(resolver, FakeResolver) and seen["tpu"] == "my-tpu"


def test_mirrored_over_given_devices():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")[:2]]
    if len(devices) < 2:
        pytest.skip("needs 2 logical CPU devices")
    strategy = kclr.distribute.get_strategy("mirrored", devices=devices)
    assert strategy.num_replicas_in_sync == 2


def test_bad_names_and_tf_config_are_clear(monkeypatch):
    with pytest.raises(ValueError, match="Unknown strategy 'gpu'"):
        kclr.distribute.get_strategy("gpu")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        kclr.distribute.get_strategy("auto")


def test_check_global_batch_size(mirrored_strategy):
    assert kclr.distribute.check_global_batch_size(256) == 256
    assert kclr.distribute.check_global_batch_size(8, mirrored_strategy) == 4
    with pytest.raises(ValueError, match=r"7 does not divide across the 2 replicas.*6 or 8"):
        kclr.distribute.check_global_batch_size(7, mirrored_strategy)
    with pytest.raises(ValueError, match="positive integer"):
        kclr.distribute.check_global_batch_size(0, mirrored_strategy)


def test_trainer_refuses_a_batch_that_does_not_divide(mirrored_strategy):
    images, labels = tiny_data(batch=7)
    with mirrored_strategy.scope():
        trainer = tiny_trainer()
        trainer.compile(optimizer="lars", loss="supcon")
    data = tf.data.Dataset.from_tensor_slices({"views": images, "labels": labels}).batch(
        7, drop_remainder=True
    )
    with pytest.raises(ValueError, match="does not divide across the 2 replicas"):
        trainer.fit(data, verbose=0)
