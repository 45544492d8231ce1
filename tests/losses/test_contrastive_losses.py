"""NT-Xent and SupCon against NumPy references and the official golden values."""

from __future__ import annotations

import pathlib
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import kclr
from kclr import registry

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from numpy_references import hobbitlong_supcon, official_simclr  # noqa: E402


def _golden_features(golden):
    x = np.asarray(golden["ntxent_input"], np.float32)  # [8, 8]: rows 0:4 view 1, 4:8 view 2
    return x, np.stack([x[:4], x[4:]], axis=1)  # [4, 2, 8]


@pytest.mark.parametrize("tau", ["0.1", "0.5", "1.0"])
def test_ntxent_matches_official_golden_with_2x_scale(golden, tau):
    _, features = _golden_features(golden)
    value = float(kclr.losses.nt_xent(features, temperature=float(tau)))
    np.testing.assert_allclose(value, golden[f"ntxent_mean_over_2N_tau{tau}"], rtol=1e-6)
    np.testing.assert_allclose(2 * value, golden[f"ntxent_tf2_tau{tau}"], rtol=1e-6)


def test_ntxent_without_normalization_matches_golden(golden):
    _, features = _golden_features(golden)
    value = float(kclr.losses.nt_xent(features, temperature=0.5, normalize=False))
    np.testing.assert_allclose(2 * value, golden["ntxent_tf2_tau0.5_hidden_norm_False"], rtol=1e-6)


@pytest.mark.parametrize("tau", ["0.1", "0.5"])
def test_supcon_matches_hobbitlong_golden(golden, tau):
    _, features = _golden_features(golden)
    labels = np.asarray(golden["supcon_labels"])
    t = float(tau)
    cases = {
        f"supcon_hobbitlong_sup_tau{tau}_base0.07": dict(labels=labels, base_temperature=0.07),
        f"supcon_hobbitlong_sup_tau{tau}_base{tau}": dict(labels=labels, base_temperature=t),
        f"supcon_hobbitlong_unsup_tau{tau}_base0.07": dict(labels=None, base_temperature=0.07),
        f"supcon_hobbitlong_unsup_tau{tau}_base{tau}": dict(labels=None, base_temperature=t),
        f"supcon_hobbitlong_sup_one_tau{tau}_base0.07": dict(
            labels=labels, base_temperature=0.07, contrast_mode="one"
        ),
        # google-research supcon with scale_by_temperature == base_temperature 1.0
        f"supcon_googleresearch_sup_tau{tau}_scale_by_temp": dict(
            labels=labels, base_temperature=1.0
        ),
    }
    for key, kwargs in cases.items():
        value = float(kclr.losses.supcon(features, temperature=t, **kwargs))
        np.testing.assert_allclose(value, golden[key], rtol=1e-6, err_msg=key)


@pytest.mark.parametrize("views", [2, 3])
@pytest.mark.parametrize("contrast_mode", ["all", "one"])
@pytest.mark.parametrize("summation", ["outside", "inside"])
@pytest.mark.parametrize("with_labels", [False, True])
def test_supcon_matches_numpy(views, contrast_mode, summation, with_labels):
    rng = np.random.default_rng(views)
    features = rng.normal(size=(6, views, 5)).astype(np.float32)
    labels = np.array([0, 1, 0, 2, 1, 0]) if with_labels else None
    got = float(
        kclr.losses.supcon(
            features, labels, 0.2, 0.07, contrast_mode=contrast_mode, summation=summation
        )
    )
    expected = hobbitlong_supcon(features, labels, 0.2, 0.07, contrast_mode, summation)
    np.testing.assert_allclose(got, expected, rtol=2e-5)


@pytest.mark.parametrize("views", [2, 3])
def test_ntxent_is_supcon_without_labels_and_matches_official_for_2_views(views):
    rng = np.random.default_rng(3)
    features = rng.normal(size=(5, views, 7)).astype(np.float32)
    value = float(kclr.losses.nt_xent(features, 0.3))
    np.testing.assert_allclose(value, hobbitlong_supcon(features, None, 0.3, 0.3), rtol=1e-5)
    if views == 2:
        hidden = np.concatenate([features[:, 0], features[:, 1]], 0)
        np.testing.assert_allclose(2 * value, official_simclr(hidden, 0.3), rtol=1e-5)


@pytest.mark.parametrize("views", [2, 3])
@pytest.mark.parametrize("contrast_mode", ["all", "one"])
def test_supcon_gradient_matches_finite_differences(views, contrast_mode):
    rng = np.random.default_rng(7)
    features = rng.normal(size=(4, views, 3))
    labels = np.array([0, 1, 0, 1])
    x = tf.constant(features, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = kclr.losses.supcon(x, labels, 0.5, 0.07, contrast_mode=contrast_mode)
    grad = tape.gradient(loss, x).numpy()
    eps = 1e-6
    numeric = np.zeros_like(features)
    for idx in np.ndindex(features.shape):
        plus, minus = features.copy(), features.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (
            hobbitlong_supcon(plus, labels, 0.5, 0.07, contrast_mode)
            - hobbitlong_supcon(minus, labels, 0.5, 0.07, contrast_mode)
        ) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_anchor_without_positive_is_zero_not_nan():
    features = np.random.default_rng(0).normal(size=(4, 1, 6)).astype(np.float32)
    labels = np.array([0, 1, 2, 2])  # samples 0 and 1 have no positive with one view
    x = tf.constant(features)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = kclr.losses.supcon(x, labels)
    assert np.isfinite(float(loss))
    assert np.all(np.isfinite(tape.gradient(loss, x).numpy()))
    np.testing.assert_allclose(
        float(loss), hobbitlong_supcon(features, labels, 0.1, 0.07), rtol=1e-5
    )


def test_half_precision_features_give_float32_loss():
    features = np.random.default_rng(0).normal(size=(4, 2, 6)).astype(np.float32)
    loss16 = kclr.losses.nt_xent(tf.constant(features, tf.bfloat16), 0.5)
    assert loss16.dtype == tf.float32
    np.testing.assert_allclose(float(loss16), float(kclr.losses.nt_xent(features, 0.5)), rtol=2e-2)


def test_loss_classes_equal_functions_and_round_trip_config():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(4, 3, 6)).astype(np.float32)
    labels = np.array([0, 1, 1, 0])
    ntxent = kclr.losses.NTXent(temperature=0.3)
    np.testing.assert_allclose(
        float(ntxent(None, features)), float(kclr.losses.nt_xent(features, 0.3)), rtol=1e-6
    )
    supcon = kclr.losses.SupCon(
        temperature=0.3, base_temperature=0.1, contrast_mode="one", summation="inside"
    )
    np.testing.assert_allclose(
        float(supcon(labels, features)),
        float(kclr.losses.supcon(features, labels, 0.3, 0.1, "one", "inside")),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        float(kclr.losses.SupCon(0.3)(None, features)),
        float(kclr.losses.supcon(features, None, 0.3)),
        rtol=1e-6,
    )
    for loss in (ntxent, supcon):
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert type(restored) is type(loss)
        assert restored.get_config() == loss.get_config()


def test_registry_builds_losses_by_name():
    assert {"ntxent", "supcon", "nt_logistic", "margin_triplet"} <= set(registry.losses.names())
    loss = registry.losses.get("supcon", temperature=0.2, summation="inside")
    assert isinstance(loss, kclr.losses.SupCon) and loss.summation == "inside"
    loss = registry.losses.get({"name": "ntxent", "config": {"temperature": 0.5}})
    assert isinstance(loss, kclr.losses.NTXent) and loss.temperature == 0.5


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match=r"\[batch, views, dim\]"):
        kclr.losses.nt_xent(np.zeros((4, 8), np.float32))
    with pytest.raises(ValueError, match="contrast_mode"):
        kclr.losses.SupCon(contrast_mode="both")
    with pytest.raises(ValueError, match="summation"):
        kclr.losses.SupCon(summation="middle")


@pytest.mark.parametrize("views", [2, 3])
def test_ntxent_gradient_matches_finite_differences(views):
    rng = np.random.default_rng(11)
    features = rng.normal(size=(4, views, 3))
    x = tf.constant(features, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = kclr.losses.nt_xent(x, temperature=0.4)
    grad = tape.gradient(loss, x).numpy()

    def reference(f):
        if views == 2:  # the official function, halved
            return official_simclr(np.concatenate([f[:, 0], f[:, 1]]), 0.4) / 2
        return hobbitlong_supcon(f, None, 0.4, 0.4)

    eps = 1e-6
    numeric = np.zeros_like(features)
    for idx in np.ndindex(features.shape):
        plus, minus = features.copy(), features.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (reference(plus) - reference(minus)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
