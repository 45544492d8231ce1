"""Iterators that close at once: tf.data autotuning off in kclr's datasets and fits."""

import time

import numpy as np
import pytest
import tensorflow as tf

import kclr
import kclr.augment as A
import kclr.data as D
from kclr.data.teardown import closes_promptly
from kclr.evaluation.features import extract_features


def _options(autotune):
    options = tf.data.Options()
    options.autotune.enabled = autotune
    return options


def test_closes_promptly_turns_autotuning_off_unless_the_dataset_chose():
    data = tf.data.Dataset.range(4)
    assert data.options().autotune.enabled is None
    assert closes_promptly(data).options().autotune.enabled is False
    assert list(closes_promptly(data).as_numpy_iterator()) == [0, 1, 2, 3]
    chose_on = data.with_options(_options(True))
    assert closes_promptly(chose_on).options().autotune.enabled is True
    arrays = np.zeros((2, 3))
    assert closes_promptly(arrays) is arrays


def test_kclr_pipelines_have_autotuning_off():
    images = np.zeros((8, 16, 16, 3), np.uint8)
    flip = A.AugmentationPipeline([A.RandomFlip()])
    train = D.pretraining_dataset(images, recipe=flip, image_size=16, global_batch_size=4)
    test = D.labelled_dataset((images, np.arange(8) % 2), image_size=16, batch_size=4)
    assert train.options().autotune.enabled is False
    assert test.options().autotune.enabled is False


def test_trainer_fit_and_evaluate_hand_keras_a_dataset_without_autotuning(monkeypatch):
    trainer = kclr.ContrastiveTrainer(
        kclr.models.ResNet(depth=18, width_multiplier=0.125, input_shape=(16, 16, 3)),
        kclr.models.ProjectionHead("v1", output_dim=8),
    )
    keras_trainer = next(c for c in type(trainer).__mro__[1:] if "fit" in vars(c))
    seen = {}
    monkeypatch.setattr(keras_trainer, "fit", lambda self, x=None, *a, **k: seen.update(fit=x))
    monkeypatch.setattr(
        keras_trainer, "evaluate", lambda self, x=None, *a, **k: seen.update(evaluate=x)
    )
    data = tf.data.Dataset.from_tensors({"views": np.zeros((4, 2, 16, 16, 3), np.float32)})
    trainer.fit(data.repeat(), steps_per_epoch=1)
    trainer.evaluate(data)
    assert seen["fit"].options().autotune.enabled is False
    assert seen["evaluate"].options().autotune.enabled is False
    chose = data.repeat().with_options(_options(True))
    trainer.fit(chose, steps_per_epoch=1)
    assert seen["fit"].options().autotune.enabled is True  # the author's choice is kept


def test_feature_extraction_datasets_have_autotuning_off(monkeypatch):
    import kclr.data.teardown as teardown

    made = []

    def spy(dataset):
        made.append(closes_promptly(dataset))
        return made[-1]

    monkeypatch.setattr(teardown, "closes_promptly", spy)
    encoder = kclr.models.ResNet(depth=18, width_multiplier=0.125, input_shape=(8, 8, 3))
    data = tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 3), np.float32)).batch(2)
    for given in (data, np.zeros((4, 8, 8, 3), np.float32)):
        out = extract_features(encoder, given, batch_size=2)
        assert out["features"].shape == (4, encoder.output_shape[-1])
    assert [d.options().autotune.enabled for d in made] == [False, False]


@pytest.mark.slow
def test_deleting_a_busy_pipelines_iterator_returns_at_once():
    """The iterator of a kclr pipeline, consumed inside a busy `tf.function` for 11 s
    (past the 10.23 s autotuning round), is deleted in well under a second. With
    autotuning on, TensorFlow 2.21 waits here until 20.47 s about half of the time
    (benchmarks/fit_tail.py)."""
    images = np.zeros((16, 16, 16, 3), np.uint8)
    flip = A.AugmentationPipeline([A.RandomFlip()])
    data = D.pretraining_dataset(images, recipe=flip, image_size=16, global_batch_size=4)
    a = tf.random.normal((600, 600))

    @tf.function
    def busy_step(iterator):
        views = next(iterator)["views"]
        y = a
        for _ in range(10):
            y = tf.matmul(y, a) / 600.0
        return tf.reduce_sum(views) + tf.reduce_sum(y)

    for _ in range(2):
        start, iterator = time.perf_counter(), iter(data)
        while time.perf_counter() - start < 11.0:
            busy_step(iterator).numpy()
        before = time.perf_counter()
        del iterator
        assert time.perf_counter() - before < 1.0
