"""sync_bn takes effect only with more than one replica: same numbers, same graph on one."""

import keras
import numpy as np
import tensorflow as tf

import kclr


def _models(sync_bn):
    keras.utils.set_random_seed(0)
    encoder = kclr.models.ResNet(18, 0.125, cifar_stem=True, sync_bn=sync_bn, input_shape=(8, 8, 3))
    head = kclr.models.ProjectionHead("v2", output_dim=8, sync_bn=sync_bn)
    head(encoder(np.zeros((1, 8, 8, 3), np.float32)))
    return encoder, head


def test_sync_bn_gives_identical_numbers_on_one_device():
    images = np.random.default_rng(0).uniform(size=(4, 2, 8, 8, 3)).astype("float32")
    results = []
    for sync_bn in (True, False):
        encoder, head = _models(sync_bn)
        trainer = kclr.ContrastiveTrainer(encoder, head)
        trainer.compile(optimizer="sgd", loss="ntxent")
        data = tf.data.Dataset.from_tensors({"views": images})
        loss = trainer.fit(data, epochs=1, verbose=0).history["loss"][-1]
        results.append((loss, [w.numpy() for w in trainer.weights]))
    (loss_sync, weights_sync), (loss_plain, weights_plain) = results
    assert loss_sync == loss_plain
    assert len(weights_sync) == len(weights_plain)
    for a, b in zip(weights_sync, weights_plain, strict=True):
        np.testing.assert_array_equal(a, b)  # bit for bit, BN moving statistics included


def test_single_replica_graph_has_no_extra_batch_norm_work():
    # Keras's synchronized path computes E[x^2] from a squared copy of every activation;
    # on one replica kclr's layer must not.
    layer = kclr.models.BatchNormalization(synchronized=True)
    x = tf.random.stateless_normal([4, 3, 3, 2], [0, 1])
    layer.build(x.shape)
    graph = tf.function(lambda t: layer(t, training=True)).get_concrete_function(x).graph
    ops = {op.type for op in graph.get_operations()}
    assert "Square" not in ops and "SquaredDifference" in ops
    np.testing.assert_allclose(
        layer(x, training=True).numpy(),
        keras.layers.BatchNormalization()(x, training=True).numpy(),
        atol=1e-6,
    )
