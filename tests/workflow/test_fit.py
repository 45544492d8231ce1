"""`kclr fit` run directories, resume, and the NaN guard (tiny preset)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from kclr.run import config
from kclr.run import fit as runs
from kclr.trainer.callbacks import NonFiniteLossError


def test_two_step_fit_writes_every_artefact(tiny_run):
    run_dir = tiny_run.run_dir
    assert tiny_run.steps == 2
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["preset"] == "tiny" and saved["train"]["steps"] == 2
    assert config.to_dict(config.from_dict(saved)) == config.to_dict(config.resolve("tiny"))
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert len(rows) == 1 and rows[0]["step"] == "2"
    assert float(rows[0]["loss"]) > 0 and "knn_top1" in rows[0] and "learning_rate" in rows[0]
    assert list((run_dir / "logs" / "train").glob("events.out.tfevents.*"))
    ckpts = sorted((run_dir / "checkpoints").glob("ckpt-*.npz"))
    assert [p.name for p in ckpts] == ["ckpt-000000001.npz", "ckpt-000000002.npz"]
    latest = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == 2 and latest["file"] == "ckpt-000000002.npz"
    with np.load(ckpts[-1]) as data:  # every variable, keyed by path
        keys = set(data.files)
    trainer = tiny_run.trainer
    assert {v.path for v in trainer.weights} <= keys
    assert "optimizer/iteration" in keys and any(k.endswith("_momentum") for k in keys)
    assert any("moving_mean" in k for k in keys)  # BatchNorm statistics
    assert len(keys) == len(trainer.weights) + len(trainer.optimizer.variables)
    png = (run_dir / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    from kclr.evaluation.neighbours import grid_pixel_size

    assert tiny_run.neighbours == run_dir / "neighbours.png"  # 8 x 8 on the monitor's test split
    assert matplotlib.image.imread(tiny_run.neighbours).shape[:2] == grid_pixel_size(8, 8)
    for name in ("config.json", "model.weights.h5", "metadata.json", "README.md"):
        assert (run_dir / "export" / name).exists(), name
    results = json.loads((run_dir / "results.json").read_text())
    assert 0.0 <= results["knn"]["pretrained_encoder"] <= 100.0


def test_tensorboard_events_hold_the_epoch_metrics(tiny_run):
    import tensorflow as tf

    event_file = next((tiny_run.run_dir / "logs" / "train").glob("events.out.tfevents.*"))
    tags = {}
    for record in tf.data.TFRecordDataset(str(event_file)):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            tags[value.tag] = float(tf.make_ndarray(value.tensor))
    assert np.isclose(tags["epoch_loss"], tiny_run.history[-1]["loss"])
    assert "epoch_knn_top1" in tags
    for name in ("rankme", "alignment", "uniformity"):  # the label-free health metrics
        assert np.isclose(tags[f"epoch_{name}"], tiny_run.history[-1][name])
    assert 1.0 <= tags["epoch_rankme"] <= 64  # min(512 images, 64 features)
    projector = tiny_run.run_dir / "logs" / "train"  # beside the scalars
    rows = (projector / "metadata.tsv").read_text().splitlines()
    assert rows[0] == "path\tlabel" and len(rows) - 1 == len(
        (projector / "tensors.tsv").read_text().splitlines()
    )


def test_exported_encoder_loads_and_matches_trained_weights(tiny_run):
    import kclr

    encoder = kclr.zoo.load(str(tiny_run.run_dir / "export"))
    trained = tiny_run.trainer.encoder
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(
        encoder(images, training=False), trained(images, training=False), atol=1e-5
    )


def test_existing_run_dir_is_never_overwritten(tiny_run):
    before = sorted(p.name for p in tiny_run.run_dir.iterdir())
    with pytest.raises(runs.RunDirectoryError, match="--resume"):
        runs.fit(config.resolve("tiny"), out=tiny_run.run_dir, verbose=0)
    assert sorted(p.name for p in tiny_run.run_dir.iterdir()) == before


def test_resume_with_a_different_config_is_refused(tiny_run):
    cfg = config.resolve("tiny", overrides=["schedule.config.base_learning_rate=0.5"])
    with pytest.raises(runs.RunDirectoryError, match="schedule.config.base_learning_rate"):
        runs.fit(cfg, out=tiny_run.run_dir, resume=True, verbose=0)


class _Interrupt(Exception):
    pass


def _interrupt_at(step, before=False):
    """Raises when `step` begins (`before`) or ends, like a kill at that point."""
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if before and int(self.model.optimizer.iterations.numpy()) == step - 1:
                raise _Interrupt()

        def on_train_batch_end(self, batch, logs=None):
            if not before and int(self.model.optimizer.iterations.numpy()) == step:
                raise _Interrupt()

    return Interrupt()


def test_interrupted_run_resumes_to_the_uninterrupted_weights(tiny_run, tmp_path):
    cfg = config.resolve("tiny")  # the uninterrupted run is `tiny_run` (2 steps, 8 per epoch)
    # Killed during step 2 (mid-epoch); the last checkpoint is step 1.
    with pytest.raises(_Interrupt):
        runs.fit(cfg, out=tmp_path / "cut", verbose=0, callbacks=[_interrupt_at(2, before=True)])
    latest = json.loads((tmp_path / "cut" / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == 1
    resumed = runs.fit(cfg, out=tmp_path / "cut", resume=True, verbose=0)
    assert resumed.steps == tiny_run.steps == 2
    assert int(resumed.trainer.optimizer.iterations.numpy()) == 2
    for a, b in zip(tiny_run.trainer.get_weights(), resumed.trainer.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert [r["step"] for r in resumed.history] == [r["step"] for r in tiny_run.history] == [2]
    again = runs.fit(cfg, out=tmp_path / "cut", resume=True, verbose=0)  # already finished
    assert again.steps == 2 and [r["step"] for r in again.history] == [2]
    for a, b in zip(resumed.trainer.get_weights(), again.trainer.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    import keras

    class PoisonAfter(keras.callbacks.Callback):
        """Makes step 3 produce NaN by poisoning a kernel after step 2 is saved."""

        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == 2:
                kernel = self.model.encoder.trainable_variables[0]
                kernel.assign(kernel * np.nan)

    cfg = config.resolve("tiny", overrides=["train.steps=5", "eval.monitor=false"])
    with pytest.raises(NonFiniteLossError) as info:
        runs.fit(cfg, out=tmp_path / "nan", verbose=0, callbacks=[PoisonAfter()])
    message = str(info.value)
    assert "NaN/Inf at step 3" in message and "ckpt-000000002.npz (step 2)" in message
    latest = json.loads((tmp_path / "nan" / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == 2
    with np.load(tmp_path / "nan" / "checkpoints" / latest["file"]) as data:
        assert all(np.isfinite(data[k]).all() for k in data.files)
    assert not (tmp_path / "nan" / "export").exists()


@pytest.mark.slow  # three short runs; `tests/trainer/test_callbacks.py` covers the callback fast
def test_resume_across_an_epoch_boundary_with_one_fit_call(tmp_path):
    """Killed mid-epoch 1 of a 3-epoch run; the resumed run's rows and weights match."""
    overrides = ["train.steps=6", "data.num_examples=32", "eval.monitor=false",
                 "train.export=false", "train.checkpoint_every_steps=3"]  # fmt: skip
    cfg = config.resolve("tiny", overrides=overrides)  # 4 steps per epoch, 2 epochs
    full = runs.fit(cfg, out=tmp_path / "full", verbose=0)
    assert [r["step"] for r in full.history] == [4, 6]
    with pytest.raises(_Interrupt):
        runs.fit(cfg, out=tmp_path / "cut", verbose=0, callbacks=[_interrupt_at(4, before=True)])
    assert json.loads((tmp_path / "cut" / "checkpoints" / "latest.json").read_text())["step"] == 3
    resumed = runs.fit(cfg, out=tmp_path / "cut", resume=True, verbose=0)
    assert [r["step"] for r in resumed.history] == [4, 6]
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    for a, b in zip(full.trainer.get_weights(), resumed.trainer.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_mistyped_eval_source_is_an_error_before_any_file(tmp_path):
    cfg = config.resolve("tiny", overrides=[f"data.eval_source={tmp_path / 'nope'}"])
    with pytest.raises(ValueError, match="data.eval_source"):
        runs.fit(cfg, out=tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_run_plan_reads_every_plain_setting():
    cfg = config.resolve("demo")
    plan = runs.plan(cfg, num_examples=6000)
    assert (plan.steps_per_epoch, plan.total_steps, plan.epochs) == (23, 23 * 52, 52)
    assert plan.monitor == {
        "source": "demo", "where": "data.source", "every_n_epochs": 26, "max_examples": 6000,
    }  # fmt: skip
    assert plan.checkpoint == {"every_steps": 299, "keep": 2}
