"""Label-free health: RankMe and alignment/uniformity against NumPy references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kclr.evaluation import health


def _rankme_reference(z, eps=1e-7):
    # Garrido et al. 2023, eq. 1: p_k = sigma_k / ||sigma||_1 + eps; exp(-sum p log p)
    sigma = np.linalg.svd(np.asarray(z, np.float64), compute_uv=False)
    p = sigma / sigma.sum() + eps
    return np.exp(-sum(pk * np.log(pk) for pk in p))


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_effective_rank_of_a_collapsed_embedding_is_one():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=(1, 32))
    collapsed = rng.normal(size=(256, 1)) * direction + 1e-6 * rng.normal(size=(256, 32))
    rank = health.effective_rank(collapsed)
    assert rank == pytest.approx(_rankme_reference(collapsed), rel=1e-9)
    assert 1.0 <= rank < 1.05


def test_effective_rank_of_an_isotropic_embedding_is_near_the_dimension():
    rng = np.random.default_rng(1)
    isotropic = rng.normal(size=(8192, 32))
    rank = health.effective_rank(isotropic)
    assert rank == pytest.approx(_rankme_reference(isotropic), rel=1e-9)
    assert 31.5 < rank <= 32.0


def test_effective_rank_of_a_k_dimensional_embedding():
    rng = np.random.default_rng(2)
    z = np.concatenate([rng.normal(size=(4096, 4)), np.zeros((4096, 28))], axis=1)
    assert health.effective_rank(z) == pytest.approx(4.0, abs=0.1)


def test_alignment_and_uniformity_match_loops():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5))
    ux, uy = _unit(x), _unit(y)
    align = np.mean([np.sum((a - b) ** 2) for a, b in zip(ux, uy, strict=True)])
    pairs = [
        np.exp(-2 * np.sum((ux[i] - ux[j]) ** 2)) for i, j in itertools.combinations(range(12), 2)
    ]
    assert health.alignment(x, y) == pytest.approx(align, rel=1e-9)
    assert health.uniformity(x) == pytest.approx(np.log(np.mean(pairs)), rel=1e-9)
    metrics = health.health_metrics(x, y)
    assert metrics["uniformity"] == pytest.approx(
        0.5 * (health.uniformity(x) + health.uniformity(y)), rel=1e-12
    )


def test_uniformity_bounds():
    rng = np.random.default_rng(4)
    same = np.tile(rng.normal(size=(1, 8)), (10, 1))
    assert health.uniformity(same) == pytest.approx(0.0, abs=1e-12)  # collapsed: log 1
    assert health.alignment(same, same) == pytest.approx(0.0, abs=1e-12)
    spread = rng.normal(size=(2000, 64))
    # uniform on S^(d-1): ||x - y||^2 = 2 - 2 x.y with x.y ~ N(0, 1/d), so
    # log E exp(-2 ||x - y||^2) = -4 + log E exp(4 x.y) = -4 + 8/d
    assert health.uniformity(spread) == pytest.approx(-4.0 + 8.0 / 64, abs=0.02)
    with pytest.raises(ValueError, match="at least 2"):
        health.uniformity(same[:1])


def test_collapse_warning():
    assert health.collapse_warning(0.5, None, 64) is not None  # below 1% of 64
    assert "below 1%" in health.collapse_warning(0.5, None, 64)
    assert "down from 20.0" in health.collapse_warning(9.0, 20.0, 64)
    assert "learning rate" in health.collapse_warning(9.0, 20.0, 64)
    assert health.collapse_warning(11.0, 20.0, 64) is None
    assert health.collapse_warning(5.0, None, 64) is None


def test_health_monitor_logs_and_warns():
    import keras

    rng = np.random.default_rng(5)
    views = rng.integers(0, 256, size=(16, 2, 8, 8, 3), dtype=np.uint8)
    collapse = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
            keras.layers.Dense(16),
        ]
    )
    lines = []
    monitor = health.HealthMonitor(views, encoder=collapse, echo=lines.append)
    monitor.history.append({"epoch": 1, "rankme": 8.0})  # the epoch before: healthy
    logs = {}
    monitor.on_epoch_end(1, logs)
    assert set(logs) == {"rankme", "alignment", "uniformity"}
    assert logs["rankme"] < 1.1  # a rank-1 encoder
    assert lines[0].startswith("epoch 2: effective rank 1.0 of 16")
    assert lines[1].startswith("epoch 2: Warning: the embedding is collapsing: effective rank 1.0")
    assert "down from 8.0 in one epoch" in lines[1]
    with pytest.raises(ValueError, match=r"\[N, 2, H, W, 3\]"):
        health.HealthMonitor(views[:, :1])


def test_the_sample_comes_from_the_run_stream_once_per_image():
    import tensorflow as tf

    from kclr import data as kdata

    views = np.random.default_rng(6).random((10, 2, 4, 4, 3)).astype(np.float32)
    stream = tf.data.Dataset.from_tensor_slices({"views": views}).batch(4).repeat()
    sample = health.stream_sample(stream, 6)
    assert sample.shape == (6, 2, 4, 4, 3) and sample.dtype == np.uint8
    np.testing.assert_allclose(sample, views[:6] * 255, atol=1.0)  # the first 6, in order
    as_uint8 = stream.map(lambda b: {"views": tf.cast(b["views"] * 255, tf.uint8)})
    assert health.stream_sample(as_uint8, 6) is None  # photometric stage still to come
    source = kdata.resolve_source((np.zeros((7, 4, 4, 3), np.uint8), np.zeros(7)))
    assert health.sample_size(source, 512) == 7 and health.sample_size(source, 5) == 5
