"""`kclr.trainer.callbacks` alone, on a plain Keras model."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from kclr.trainer import callbacks as cb
from kclr.trainer.callbacks import NonFiniteLossError, read_metrics
from kclr.trainer.checkpoint_files import CheckpointError


def _model():
    keras.utils.set_random_seed(0)
    # Checkpoints are keyed by variable path: name the layers, as kclr's models do.
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="d0"),
         keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(1, name="d1")],
        name="net",
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    import tensorflow as tf

    x, y = rng.normal(size=(40, 4)).astype("float32"), rng.normal(size=(40, 1)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()  # 10 steps per pass


def _fit(model, **kwargs):
    model.fit(_data(), verbose=0, shuffle=False, **kwargs)


def test_epoch_boundaries_end_keras_epochs_where_passes_end(tmp_path):
    model = _model()
    rows = cb.MetricsCSV(tmp_path / "m.csv")
    # Resumed at step 7 of 10-step passes, to end at step 25: epochs end at 10, 20, 25.
    model.optimizer.iterations.assign(7)
    _fit(model, initial_epoch=0, epochs=3, steps_per_epoch=10,
              callbacks=[cb.EpochBoundaries(10, 25), rows])  # fmt: skip
    assert [r["step"] for r in rows.history] == [10, 20, 25]
    assert [r["epoch"] for r in read_metrics(tmp_path / "m.csv")] == [1, 2, 3]


def test_step_checkpoint_saves_everything_by_name_and_restores_before_the_first_step(tmp_path):
    model = _model()
    _fit(model, epochs=1, steps_per_epoch=3,
              callbacks=[cb.StepCheckpoint(tmp_path, every_steps=2, keep=1)])  # fmt: skip
    latest = json.loads((tmp_path / "latest.json").read_text())
    assert latest == {"file": "ckpt-000000003.npz", "step": 3, "epoch": 1}
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == [
        "ckpt-000000003.npz", "ckpt-000000003.npz.sha256",
    ]  # fmt: skip
    state = {k: keras.ops.convert_to_numpy(v) for k, v in cb.state_variables(model).items()}
    assert any("moving_variance" in k for k in state) and any("momentum" in k for k in state)
    fresh = _model()  # never stepped: the optimizer is built by the callback, no dummy step
    checkpoint = cb.StepCheckpoint(tmp_path, every_steps=100)

    class Stop(Exception):
        pass

    def stop(batch, logs):
        raise Stop()

    with pytest.raises(Stop):  # look at the state before the first step runs
        _fit(fresh, epochs=1, steps_per_epoch=1, callbacks=[
            checkpoint, keras.callbacks.LambdaCallback(on_train_batch_begin=stop),
        ])  # fmt: skip
    assert checkpoint.restored["step"] == 3
    for key, variable in cb.state_variables(fresh).items():
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), state[key])


def test_checkpoint_of_another_model_is_refused_by_name(tmp_path):
    model = _model()
    _fit(model, epochs=1, steps_per_epoch=1,
              callbacks=[cb.StepCheckpoint(tmp_path)])  # fmt: skip
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, name="other")])
    other.compile(optimizer="sgd", loss="mse")
    with pytest.raises(CheckpointError, match="does not fit this model"):
        _fit(other, epochs=1, steps_per_epoch=1,
                  callbacks=[cb.StepCheckpoint(tmp_path)])  # fmt: skip


def test_non_finite_loss_guard_names_the_step_and_the_last_checkpoint(tmp_path):
    model = _model()
    poison = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: (
            batch == 1 and model.layers[0].kernel.assign(model.layers[0].kernel * np.nan)
        )
    )
    with pytest.raises(NonFiniteLossError, match=r"NaN/Inf at step 3.*ckpt-000000002.npz"):
        _fit(model, epochs=1, steps_per_epoch=5, callbacks=[
            cb.NonFiniteLossGuard(tmp_path), cb.StepCheckpoint(tmp_path, every_steps=1), poison,
        ])  # fmt: skip
    assert json.loads((tmp_path / "latest.json").read_text())["step"] == 2
