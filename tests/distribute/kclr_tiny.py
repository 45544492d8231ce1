"""Tiny models and data shared by the distribution tests (also run by worker subprocesses)."""

from __future__ import annotations

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="kclr_tests")
class TinyHead(keras.layers.Layer):
    """A 2-layer projection head returning the official hiddens list."""

    def __init__(self, hidden_dim=6, output_dim=5, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.output_dim = output_dim
        self.dense_0 = keras.layers.Dense(hidden_dim, use_bias=False, name="nl_0")
        self.bn_0 = keras.layers.BatchNormalization(synchronized=True, name="nl_0_bn")
        self.dense_1 = keras.layers.Dense(output_dim, name="nl_1")

    def build(self, input_shape):
        self.dense_0.build(input_shape)
        self.bn_0.build((input_shape[0], self.hidden_dim))
        self.dense_1.build((input_shape[0], self.hidden_dim))

    def call(self, h, training=None):
        a = keras.ops.relu(self.bn_0(self.dense_0(h), training=training))
        return [h, a, self.dense_1(a)]

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "output_dim": self.output_dim,
        }


def tiny_encoder(size=8, filters=4):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(synchronized=True, momentum=0.9, name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name="tiny_encoder")


def tiny_trainer(num_classes=3, seed=0):
    import kclr

    keras.utils.set_random_seed(seed)
    return kclr.ContrastiveTrainer(
        tiny_encoder(), TinyHead(name="projection_head"), num_classes=num_classes
    )


def tiny_data(batch=8, views=2, size=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(batch, views, size, size, 3)).astype("float32")
    labels = rng.integers(0, classes, batch).astype("int32")
    return images, labels


def dataset(images, labels, batch):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices({"views": images, "labels": labels}).batch(batch)


def compile_trainer(trainer, learning_rate=0.5, weight_decay=1e-4, temperature=0.5):
    """LARS (trust ratio and weight decay both active) + SupCon with labels."""
    import kclr

    trainer.compile(
        optimizer=kclr.optimizers.LARS(learning_rate, weight_decay=weight_decay),
        loss=kclr.losses.SupCon(temperature=temperature),
    )
    return trainer


def weights_by_path(model):
    return {w.path: np.asarray(w.numpy()) for w in model.weights}
