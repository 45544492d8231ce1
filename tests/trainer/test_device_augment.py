"""The photometric stage in the train step: seeded, resumable, XLA and mixed precision."""

from __future__ import annotations

import pathlib
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import kclr

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "distribute"))
from kclr_tiny import TinyHead, tiny_encoder  # noqa: E402


def _uint8_views(batch=4, steps=2, seed=0):
    rng = np.random.default_rng(seed)
    views = (rng.random((batch * steps, 2, 8, 8, 3)) * 255).astype(np.uint8)
    return tf.data.Dataset.from_tensor_slices({"views": views}).batch(batch)


def _trainer(augment_seed=3, jit_compile=False):
    keras.utils.set_random_seed(0)
    trainer = kclr.ContrastiveTrainer(
        tiny_encoder(),
        TinyHead(),
        device_augmenter=kclr.data.photometric_stage("simclr", 8),
        augment_seed=augment_seed,
    )
    trainer.compile(optimizer=kclr.optimizers.LARS(0.5), loss="ntxent", jit_compile=jit_compile)
    return trainer


def _weights(trainer):
    return [w.numpy() for w in trainer.weights]


def test_seeded_device_augmentation_is_reproducible():
    runs = []
    for _ in range(2):
        trainer = _trainer(augment_seed=3)
        trainer.fit(_uint8_views(), epochs=1, verbose=0)
        runs.append(_weights(trainer))
    for a, b in zip(runs[0], runs[1], strict=True):
        np.testing.assert_array_equal(a, b)
    images = tf.constant((np.random.default_rng(1).random((8, 8, 8, 3)) * 255).astype(np.uint8))
    other = _trainer(augment_seed=4)._augment_on_device(images, 2).numpy()
    assert not np.allclose(other, _trainer(augment_seed=3)._augment_on_device(images, 2).numpy())


def test_resume_continues_the_same_augmentation_stream(tmp_path):
    whole = _trainer()
    whole.fit(_uint8_views(), epochs=1, verbose=0)  # 2 steps
    first = _trainer()
    first.fit(_uint8_views().take(1), epochs=1, verbose=0)
    first.save(tmp_path / "at_step_1.keras")
    resumed = keras.models.load_model(tmp_path / "at_step_1.keras")
    assert resumed.augment_seed == 3 and int(resumed.optimizer.iterations) == 1
    resumed.fit(_uint8_views().skip(1), epochs=1, verbose=0)
    for a, b in zip(_weights(whole), _weights(resumed), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_augmentation_depends_on_the_step():
    trainer = _trainer()
    images = tf.constant((np.random.default_rng(1).random((8, 8, 8, 3)) * 255).astype(np.uint8))
    first = trainer._augment_on_device(images, 2).numpy()
    np.testing.assert_array_equal(first, trainer._augment_on_device(images, 2).numpy())
    trainer.optimizer.iterations.assign(1)
    assert not np.allclose(first, trainer._augment_on_device(images, 2).numpy())
    assert first.dtype == np.float32 and 0.0 <= first.min() and first.max() <= 1.0


@pytest.mark.slow  # two extra traced steps; the stream tests above run by default
def test_xla_and_mixed_precision():
    images = tf.constant((np.random.default_rng(2).random((8, 8, 8, 3)) * 255).astype(np.uint8))
    trainer = _trainer(jit_compile=True)
    reference = trainer._augment_on_device(images, 2).numpy()
    xla = tf.function(lambda x: trainer._augment_on_device(x, 2), jit_compile=True)
    once, twice = xla(images).numpy(), xla(images).numpy()
    np.testing.assert_array_equal(once, twice)  # reproducible under XLA
    # XLA expands the RNG into its own stream: same distribution, other numbers.
    assert abs(once.mean() - reference.mean()) < 0.1
    assert 0.0 <= once.min() and once.max() <= 1.0
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = _trainer()
        out = mixed._augment_on_device(images, 2)
        logs = mixed.fit(_uint8_views(steps=1), epochs=1, verbose=0).history
    finally:
        keras.config.set_dtype_policy("float32")
    assert out.dtype == tf.float32  # augmentation stays float32 under mixed precision
    np.testing.assert_array_equal(out.numpy(), reference)
    assert np.isfinite(logs["loss"][-1])


def test_uint8_views_without_augmenter_are_scaled():
    keras.utils.set_random_seed(0)
    trainer = kclr.ContrastiveTrainer(tiny_encoder(), TinyHead())
    views = (np.random.default_rng(3).random((2, 2, 8, 8, 3)) * 255).astype(np.uint8)
    np.testing.assert_allclose(
        trainer(views).numpy(), trainer(views.astype(np.float32) / 255.0).numpy(), rtol=1e-5
    )


def test_first_call_builds_the_augmenter_without_applying_it():
    """Calling the trainer outside training builds the device stage (no Keras warning
    about unbuilt state) and returns the projections of the unaugmented views."""
    trainer = _trainer()
    views = (np.random.default_rng(4).random((2, 2, 8, 8, 3)) * 255).astype(np.uint8)
    assert not trainer.device_augmenter.built
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features = trainer(views, training=False)
    assert trainer.device_augmenter.built
    expected = trainer(views.astype(np.float32) / 255.0, training=False)
    np.testing.assert_allclose(features.numpy(), expected.numpy(), rtol=1e-6)
    assert features.shape == (2, 2, 5)


@pytest.mark.parametrize("bad", ["gpu"])
def test_runs_config_key_is_validated(bad):
    from kclr.run import config

    with pytest.raises(config.ConfigError, match="data.photometric"):
        config.from_dict({"data": {"photometric": bad}})
    assert config.from_dict({"data": {"photometric": "device"}}).data.photometric == "device"


@pytest.mark.slow
def test_xla_train_step_with_device_photometric():
    trainer = _trainer(jit_compile=True)
    logs = trainer.fit(_uint8_views(), epochs=1, verbose=0).history
    assert trainer.jit_compile and np.isfinite(logs["loss"][-1])
