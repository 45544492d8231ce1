"""NT-Logistic and margin triplet (SimCLR paper ablations) against NumPy references."""

from __future__ import annotations

import numpy as np
import pytest

import kclr
from kclr import registry


def _similarities(features):
    f = features / np.linalg.norm(features, axis=-1, keepdims=True)
    b, v, _ = f.shape
    anchors = np.concatenate([f[:, i] for i in range(v)])  # view-major [V*B, D]
    sample = np.tile(np.arange(b), v)
    return anchors @ anchors.T, sample


def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def _reference(features, kind, temperature=0.5, margin=0.5, semi_hard=False):
    sims, sample = _similarities(features.astype(np.float64))
    n = len(sample)
    losses = []
    for i in range(n):
        pos = [j for j in range(n) if j != i and sample[j] == sample[i]]
        neg = [j for j in range(n) if sample[j] != sample[i]]
        s_pos = sims[i, pos].mean()
        if kind == "logistic":
            logits_pos = sims[i, pos] / temperature
            logits = sims[i] / temperature
            chosen = [j for j in neg if logits[j] < logits_pos.mean()] if semi_hard else neg
            chosen = chosen or neg
            losses.append(_softplus(-logits_pos).mean() + _softplus(logits[chosen]).mean())
        else:
            chosen = [j for j in neg if sims[i, j] < s_pos] if semi_hard else neg
            chosen = chosen or neg
            losses.append(np.maximum(sims[i, chosen] - s_pos + margin, 0).mean())
    return float(np.mean(losses))


@pytest.mark.parametrize("views", [2, 3])
@pytest.mark.parametrize("semi_hard", [False, True])
def test_nt_logistic_matches_numpy(views, semi_hard):
    features = np.random.default_rng(views).normal(size=(5, views, 4)).astype(np.float32)
    got = float(kclr.losses.nt_logistic(features, temperature=0.5, semi_hard=semi_hard))
    np.testing.assert_allclose(
        got, _reference(features, "logistic", semi_hard=semi_hard), rtol=1e-5
    )
    loss = registry.losses.get("nt_logistic", temperature=0.5, semi_hard=semi_hard)
    np.testing.assert_allclose(float(loss(None, features)), got, rtol=1e-6)


@pytest.mark.parametrize("views", [2, 3])
@pytest.mark.parametrize("semi_hard", [False, True])
def test_margin_triplet_matches_numpy(views, semi_hard):
    features = np.random.default_rng(views).normal(size=(5, views, 4)).astype(np.float32)
    got = float(kclr.losses.margin_triplet(features, margin=0.5, semi_hard=semi_hard))
    np.testing.assert_allclose(got, _reference(features, "triplet", semi_hard=semi_hard), rtol=1e-5)
    loss = registry.losses.get("margin_triplet", margin=0.5, semi_hard=semi_hard)
    np.testing.assert_allclose(float(loss(None, features)), got, rtol=1e-6)


def test_margin_triplet_is_zero_when_views_agree_and_samples_are_orthogonal():
    features = np.repeat(np.eye(4, dtype=np.float32)[:, None], 2, axis=1)  # [4, 2, 4]
    assert float(kclr.losses.margin_triplet(features, margin=0.5)) == 0.0
