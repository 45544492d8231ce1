"""SupCon with a memory queue: values against NumPy, FIFO semantics, trainer checkpoints."""

from __future__ import annotations

import pathlib
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import kclr

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "distribute"))
from kclr_tiny import TinyHead, dataset, tiny_data, tiny_encoder  # noqa: E402
from numpy_references import hobbitlong_supcon, supcon_with_queue  # noqa: E402


def _queue_inputs(seed=0, size=6, filled=4, dim=8):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(4, 2, dim)).astype("float32")
    labels = np.array([0, 1, 0, 2])
    queue = rng.normal(size=(size, dim)).astype("float32")
    queue_labels = np.array([1, 0, 3, 0, 2, 1])[:size]
    valid = (np.arange(size) < filled).astype("float32")
    return features, labels, queue, queue_labels, valid


@pytest.mark.parametrize("mode", ["all", "one"])
@pytest.mark.parametrize("summation", ["outside", "inside"])
@pytest.mark.parametrize("with_labels", [True, False])
def test_loss_with_queue_matches_numpy(mode, summation, with_labels):
    features, labels, queue, queue_labels, valid = _queue_inputs()
    labels = labels if with_labels else None
    got = kclr.losses.contrastive_loss(
        features,
        labels,
        temperature=0.2,
        base_temperature=0.07,
        contrast_mode=mode,
        summation=summation,
        queue=(queue, queue_labels, valid),
    )
    expected = supcon_with_queue(
        features, labels, queue, queue_labels, valid, 0.2, 0.07, mode, summation
    )
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    # Unfilled slots are ignored: an empty queue gives the plain SupCon loss, and the
    # filled entries change the value.
    plain = hobbitlong_supcon(features, labels, 0.2, 0.07, mode, summation)
    empty = kclr.losses.contrastive_loss(
        features, labels, 0.2, 0.07, mode, summation, queue=(queue, queue_labels, 0 * valid)
    )
    np.testing.assert_allclose(float(empty), plain, rtol=1e-5)
    assert abs(expected - plain) > 1e-3


def test_queue_positives_and_denominator():
    """An anchor whose only positive is in the queue gets a finite, non-zero loss."""
    features, _, queue, _, valid = _queue_inputs()
    features = features[:, :1]  # one view: sample 3 (label 2) has no positive in the batch
    labels = np.array([0, 1, 0, 2])
    no_queue = hobbitlong_supcon(features, labels, 0.1, 0.1)
    queue_labels = np.array([2, 5, 5, 5, 5, 5])
    got = kclr.losses.contrastive_loss(
        features, labels, 0.1, 0.1, queue=(queue, queue_labels, valid)
    )
    expected = supcon_with_queue(features, labels, queue, queue_labels, valid, 0.1, 0.1)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    assert np.isfinite(expected) and expected != no_queue


def test_memory_queue_is_a_fifo():
    queue = kclr.losses.MemoryQueue(5)
    queue.build_for(np.zeros((1, 2, 3), "float32"))
    features, labels, valid = queue.candidates()
    assert not valid.numpy().any() and (labels.numpy() == -1).all()
    batch = np.arange(12, dtype="float32").reshape(2, 2, 3)  # [B=2, V=2, D=3]
    queue.enqueue(batch, np.array([4, 5]))
    features, labels, valid = queue.candidates()
    # View-major entries: (sample 0, view 0), (1, 0), (0, 1), (1, 1).
    np.testing.assert_array_equal(features.numpy()[:4], batch.transpose(1, 0, 2).reshape(4, 3))
    np.testing.assert_array_equal(labels.numpy(), [4, 5, 4, 5, -1])
    np.testing.assert_array_equal(valid.numpy(), [1, 1, 1, 1, 0])
    queue.enqueue(batch + 100, None)  # wraps around; the oldest 3 entries fall out
    features, labels, valid = queue.candidates()
    np.testing.assert_array_equal(labels.numpy(), [-1, -1, -1, 5, -1])
    np.testing.assert_array_equal(features.numpy()[3], batch[1, 1])
    assert int(queue.filled.numpy()) == 5 and int(queue.position.numpy()) == 3
    queue.enqueue(np.ones((4, 2, 3), "float32"), np.arange(4))  # larger than the queue
    # newest 5 of [0,1,2,3,0,1,2,3] written from slot 3 on
    np.testing.assert_array_equal(queue.candidates()[1].numpy(), [1, 2, 3, 3, 0])
    with pytest.raises(ValueError, match="queue_size.*received 0"):
        kclr.losses.MemoryQueue(0)


def test_queue_fills_from_every_replica(mirrored_strategy_2):
    strategy = mirrored_strategy_2
    with strategy.scope():
        queue = kclr.losses.MemoryQueue(8)
        queue.build_for(np.zeros((1, 2, 3), "float32"))
    batch = np.arange(24, dtype="float32").reshape(4, 2, 3)
    labels = np.array([0, 1, 2, 3])

    def push():
        ctx = tf.distribute.get_replica_context()
        rows = tf.range(2) + 2 * ctx.replica_id_in_sync_group
        queue.enqueue(tf.gather(batch, rows), tf.gather(labels, rows))

    strategy.run(tf.function(push))
    for copy in strategy.experimental_local_results(queue.labels.value):
        np.testing.assert_array_equal(np.asarray(copy), [0, 1, 2, 3, 0, 1, 2, 3])
    for copy in strategy.experimental_local_results(queue.features.value):
        np.testing.assert_array_equal(np.asarray(copy), batch.transpose(1, 0, 2).reshape(8, 3))


def _queue_trainer(queue_size=12, chunk=None):
    keras.utils.set_random_seed(0)
    trainer = kclr.ContrastiveTrainer(
        tiny_encoder(), TinyHead(name="projection_head"), gradient_cache_chunk_size=chunk
    )
    trainer.compile(
        optimizer=kclr.optimizers.LARS(0.1),
        loss=kclr.losses.SupCon(temperature=0.5, queue_size=queue_size),
    )
    return trainer


def test_trainer_fills_the_queue_and_uses_it():
    images, labels = tiny_data(batch=4)
    trainer = _queue_trainer()
    trainer(images[:1])
    queue = trainer.memory_queue
    assert queue is trainer.contrastive_loss.memory_queue
    assert {id(v) for v in queue.weights} <= {id(v) for v in trainer.weights}
    trainer.fit(dataset(images, labels, 4), verbose=0)
    assert int(queue.filled.numpy()) == 8  # 4 images x 2 views
    np.testing.assert_array_equal(queue.labels.numpy()[:8], np.tile(labels, 2))
    # The next step's loss uses the queue: compare with the loss computed by hand.
    features = trainer(images, training=True).numpy()
    expected = supcon_with_queue(
        features, labels, *[np.asarray(x) for x in queue.candidates()], 0.5, 0.07
    )
    logs = trainer.evaluate(dataset(images, labels, 4), verbose=0, return_dict=True)
    features_eval = trainer(images, training=False).numpy()
    expected_eval = supcon_with_queue(
        features_eval, labels, *[np.asarray(x) for x in queue.candidates()], 0.5, 0.07
    )
    np.testing.assert_allclose(logs["loss"], expected_eval, rtol=1e-5)
    assert int(queue.filled.numpy()) == 8  # evaluation does not push
    assert np.isfinite(expected)


@pytest.mark.parametrize("chunk", [None, pytest.param(2, marks=pytest.mark.slow)])
def test_queue_round_trip_through_trainer_weights(tmp_path, chunk):
    images, labels = tiny_data(batch=4)
    data = tf.data.Dataset.from_tensor_slices({"views": images, "labels": labels})
    data = data.batch(4, drop_remainder=True)
    trainer = _queue_trainer(chunk=chunk)
    trainer.fit(data, epochs=2, verbose=0)  # 16 entries pushed into 12 slots: wrapped
    assert int(trainer.memory_queue.position.numpy()) == 4
    trainer.save_weights(tmp_path / "trainer.weights.h5")

    restored = _queue_trainer(chunk=chunk)
    restored(images[:1])
    restored.optimizer.build(restored.trainable_variables)
    restored.load_weights(tmp_path / "trainer.weights.h5")
    for a, b in zip(trainer.memory_queue.weights, restored.memory_queue.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Resuming continues the queue: the next step is the same on both.
    logs = [t.fit(data, verbose=0).history["loss"][-1] for t in (trainer, restored)]
    np.testing.assert_allclose(logs[1], logs[0], rtol=1e-6)
    np.testing.assert_array_equal(
        trainer.memory_queue.features.numpy(), restored.memory_queue.features.numpy()
    )

    trainer.save(tmp_path / "trainer.keras")
    loaded = keras.models.load_model(tmp_path / "trainer.keras")
    assert loaded.contrastive_loss.queue_size == 12
    np.testing.assert_array_equal(
        loaded.memory_queue.features.numpy(), trainer.memory_queue.features.numpy()
    )


@pytest.mark.parametrize("with_queue", [False, True])
def test_blocks_of_anchors_against_explicit_candidates_give_the_full_loss(with_queue):
    """What gradient caching computes: blocks of anchors against all candidates."""
    features, labels, queue, queue_labels, valid = _queue_inputs()
    queue = (queue, queue_labels, valid) if with_queue else None
    full = kclr.losses.contrastive_loss(features, labels, 0.3, 0.07, reduction="none", queue=queue)
    blocks = [
        kclr.losses.contrastive_loss(
            features[start : start + 2],
            labels[start : start + 2],
            0.3,
            0.07,
            reduction="none",
            queue=queue,
            candidates=(features, labels, start),
        )
        for start in (0, 2)
    ]
    np.testing.assert_allclose(np.concatenate(blocks), full.numpy(), rtol=1e-6)
    if not with_queue:  # the Keras loss's hook computes the same block
        loss = kclr.losses.SupCon(temperature=0.3)
        per_sample = loss.per_sample(labels[2:], features[2:], candidates=(features, labels, 2))
        np.testing.assert_allclose(per_sample, blocks[1], rtol=1e-6)
