"""ContrastiveTrainer with kclr's own ResNet and ProjectionHead (tiny width, 32 px)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import kclr

models = pytest.importorskip("kclr.models")


def test_fit_save_load_with_resnet_and_projection_head(tmp_path):
    keras.utils.set_random_seed(0)
    encoder = models.ResNet(
        depth=18, width_multiplier=0.125, cifar_stem=True, input_shape=(16, 16, 3)
    )
    trainer = kclr.ContrastiveTrainer(
        encoder, models.ProjectionHead("v2", output_dim=8), num_classes=4
    )
    trainer.compile(optimizer=kclr.optimizers.LARS(0.1, weight_decay=1e-6), loss="supcon")
    rng = np.random.default_rng(0)
    views = rng.uniform(size=(4, 2, 16, 16, 3)).astype("float32")
    labels = np.array([0, 1, 2, 3], np.int32)
    data = tf.data.Dataset.from_tensor_slices({"views": views, "labels": labels}).batch(4)
    logs = trainer.fit(data, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][-1]) and np.isfinite(logs["sup_loss"][-1])
    # LARS exclusions hit the ResNet's BN parameters by path (gamma/beta patterns).
    optimizer = trainer.optimizer
    bn_paths = [v.path for v in trainer.trainable_variables if v.path.endswith(("gamma", "beta"))]
    assert bn_paths and not any(optimizer.use_weight_decay(p) for p in bn_paths)
    conv_paths = [
        v.path
        for v in trainer.trainable_variables
        if "conv" in v.path and v.path.endswith("kernel")
    ]
    assert conv_paths and all(optimizer.use_weight_decay(p) for p in conv_paths)
    trainer.save(tmp_path / "t.keras")
    restored = keras.models.load_model(tmp_path / "t.keras")
    np.testing.assert_allclose(restored(views), trainer(views), rtol=1e-5, atol=1e-6)
