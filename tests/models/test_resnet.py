"""ResNet encoder: exact parameter counts, init, BN settings, padding, shapes, config."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from kclr import registry
from kclr.models import ResNet, feature_dim, resnet18, resnet50
from kclr.models import resnet as resnet_module


def trainable_count(model: keras.Model) -> int:
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def batch_norms(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


# Trainable parameter counts of the authors' models (measured by running their code).
@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"depth": 50, "width_multiplier": 1}, 23_508_032),
        ({"depth": 50, "width_multiplier": 1, "cifar_stem": True}, 23_500_352),
        ({"depth": 18, "width_multiplier": 1, "cifar_stem": True}, 11_173_056),
        ({"depth": 50, "width_multiplier": 1, "sk_ratio": 0.0625}, 35_215_584),
        ({"depth": 50, "width_multiplier": 2}, 93_907_072),
    ],
)
def test_param_counts_match_official(kwargs, expected):
    model = ResNet(input_shape=(32, 32, 3), **kwargs)
    assert trainable_count(model) == expected


@pytest.mark.slow
@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"width_multiplier": 4}, 375_378_176),
        ({"width_multiplier": 2, "sk_ratio": 0.0625}, 140_306_048),
    ],
)
def test_param_counts_wide_models(kwargs, expected):
    model = ResNet(depth=50, input_shape=(32, 32, 3), **kwargs)
    assert trainable_count(model) == expected


def test_non_trainable_count_r50():
    # +NT total of the official R50 1x: 23,561,152 (moving mean / variance).
    model = ResNet(50, 1, input_shape=(32, 32, 3))
    total = sum(int(np.prod(v.shape)) for v in model.weights)
    assert total == 23_561_152


def test_zero_init_gammas_and_bn_settings():
    model = resnet50(width_multiplier=0.25, input_shape=(32, 32, 3))
    bns = batch_norms(model)
    zero = [bn.name for bn in bns if np.all(bn.gamma.numpy() == 0)]
    assert len(zero) == 16
    assert all(name.endswith("_bn3") for name in zero)
    ones = [bn for bn in bns if bn.name not in zero]
    assert all(np.all(bn.gamma.numpy() == 1) for bn in ones)
    assert all(bn.momentum == 0.9 and bn.epsilon == 1e-5 for bn in bns)
    assert all(bn.synchronized for bn in bns)
    assert not any(bn.synchronized for bn in batch_norms(resnet18(0.25, sync_bn=False)))


def test_basic_block_zero_init_on_second_bn():
    model = resnet18(width_multiplier=0.25, input_shape=(32, 32, 3))
    zero = [bn.name for bn in batch_norms(model) if np.all(bn.gamma.numpy() == 0)]
    assert len(zero) == 8 and all(name.endswith("_bn2") for name in zero)


def test_conv_kernels_have_no_bias_and_fan_in_init():
    model = ResNet(50, 1, input_shape=(32, 32, 3))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 53
    assert not any(layer.use_bias for layer in convs)
    # VarianceScaling(scale=1, fan_in, truncated normal): std ~ sqrt(1 / fan_in).
    stem = model.get_layer("stem_conv").kernel.numpy()
    np.testing.assert_allclose(stem.std(), np.sqrt(1 / 147), rtol=0.08)
    assert np.abs(stem).max() <= 2 * np.sqrt(1 / 147) / 0.87962566 + 1e-6


def numpy_conv(x, kernel, stride, pad):
    """Plain NumPy convolution (cross-correlation) with explicit (top/left, bottom/right) pad."""
    x = np.pad(x, ((0, 0), pad, pad, (0, 0)))
    kh, kw, _, cout = kernel.shape
    batch, height, width, _ = x.shape
    out_h = (height - kh) // stride + 1
    out_w = (width - kw) // stride + 1
    out = np.zeros((batch, out_h, out_w, cout), np.float64)
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, kernel, axes=([1, 2, 3], [0, 1, 2]))
    return out


@pytest.mark.parametrize("kernel_size, pad", [(7, (3, 3)), (3, (1, 1))])
def test_strided_conv_pads_symmetrically(kernel_size, pad):
    rng = np.random.default_rng(0)
    inputs = keras.Input((8, 8, 2))
    model = keras.Model(inputs, resnet_module.conv(inputs, 3, kernel_size, 2, name="c"))
    x = rng.normal(size=(2, 8, 8, 2)).astype("float32")
    kernel = model.get_layer("c").kernel.numpy()
    got = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(got, numpy_conv(x, kernel, 2, pad), atol=1e-5)
    # Keras/TF "same" pads (beg, end) = (pad - 1, pad + 1) here: a different result.
    same = tf.nn.conv2d(x, kernel, 2, "SAME").numpy()
    assert np.abs(same - got).max() > 1e-3


def test_stride_two_convs_are_padded_in_model():
    model = ResNet(50, 0.25, input_shape=(32, 32, 3))
    strided = [
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.strides == (2, 2)
    ]
    assert sorted(strided) == sorted(
        ["stem_conv"]
        + [f"group{g}_block0_conv2" for g in (2, 3, 4)]
        + [f"group{g}_block0_shortcut_conv" for g in (2, 3, 4)]
    )
    for name in strided:
        layer = model.get_layer(name)
        assert layer.padding == "valid"
        if layer.kernel_size != (1, 1):
            assert model.get_layer(f"{name}_pad").padding == ((layer.kernel_size[0] // 2,) * 2,) * 2
    assert model.get_layer("stem_pool").padding == "same"


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152, 200])
def test_output_shapes(depth):
    model = ResNet(depth, 0.25, input_shape=(32, 32, 3), sync_bn=False)
    features = model(np.zeros((2, 32, 32, 3), "float32"))
    expected = 128 if depth in (18, 34) else 512
    assert tuple(features.shape) == (2, expected) == (2, feature_dim(depth, 0.25))


def test_cifar_stem_has_no_max_pool_and_keeps_resolution():
    model = ResNet(18, 0.25, cifar_stem=True, input_shape=(32, 32, 3))
    names = [layer.name for layer in model.layers]
    assert "stem_pool" not in names
    assert model.get_layer("stem_conv").kernel.shape == (3, 3, 3, 16)
    assert model.get_layer("group4_block1_out").output.shape[1:3] == (4, 4)


def test_width_multiplier_scales_filters():
    model = ResNet(18, 2, input_shape=(32, 32, 3))
    assert model.get_layer("stem_conv").kernel.shape == (7, 7, 3, 128)
    assert model.get_layer("group1_block0_shortcut_conv").kernel.shape == (1, 1, 128, 128)
    assert model.output.shape == (None, 1024)
    half = ResNet(50, 0.5, input_shape=(32, 32, 3))
    assert half.get_layer("group4_block2_conv3").kernel.shape == (1, 1, 256, 1024)
    assert half.output.shape == (None, 1024)
    tiny = ResNet(50, 0.01, input_shape=(32, 32, 3))
    assert tiny.get_layer("stem_conv").kernel.shape == (7, 7, 3, 1)


def test_config_round_trip_and_save(tmp_path):
    model = ResNet(18, 0.25, cifar_stem=True, sync_bn=False, input_shape=(16, 16, 3))
    config = model.get_config()
    assert config == {
        "depth": 18,
        "width_multiplier": 0.25,
        "cifar_stem": True,
        "sk_ratio": 0.0,
        "sync_bn": False,
        "input_shape": [16, 16, 3],
        "name": "resnet",
        "trainable": True,
    }
    clone = ResNet.from_config(config)
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(1).uniform(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(clone(x), model(x), atol=1e-6)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe mode, no custom_objects
    assert type(loaded) is ResNet
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_sk_model_round_trip(tmp_path):
    model = ResNet(50, 0.25, sk_ratio=0.0625, input_shape=(32, 32, 3))
    assert model.get_layer("stem_conv1").kernel.shape == (3, 3, 3, 8)
    # mid width = max(int(16 * 0.0625), 32) = 32
    assert model.get_layer("group1_block0_sk_fc1").kernel.shape == (1, 1, 16, 32)
    assert model.get_layer("group1_block0_sk_fc2").kernel.shape == (1, 1, 32, 32)
    x = np.random.default_rng(2).uniform(size=(2, 32, 32, 3)).astype("float32")
    path = tmp_path / "sk.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-5)


def test_registry_lookup():
    encoder = registry.encoders.get("resnet50", width_multiplier=0.25, input_shape=(32, 32, 3))
    assert isinstance(encoder, ResNet) and encoder.output.shape == (None, 512)
    encoder = registry.encoders.get(
        {"name": "resnet", "config": {"depth": 18, "width_multiplier": 0.25}}
    )
    assert encoder.depth == 18
    for depth in (18, 34, 50, 101, 152, 200):
        assert f"resnet{depth}" in registry.encoders.names()


def test_bad_arguments_have_clear_errors():
    with pytest.raises(ValueError, match="Unsupported ResNet depth 42"):
        ResNet(42)
    with pytest.raises(ValueError, match="width_multiplier must be a positive"):
        ResNet(50, 0)
    with pytest.raises(ValueError, match="sk_ratio must be >= 0"):
        ResNet(18, 0.25, sk_ratio=-1)


def test_basic_block_sk_uses_resnet_d_only():
    # As the authors' ResidualBlock: ResNet-D stem and average-pool shortcut, plain 3x3 convs.
    model = ResNet(18, 0.25, sk_ratio=0.0625, input_shape=(32, 32, 3))
    names = {layer.name for layer in model.layers}
    assert {"stem_conv1", "stem_conv3", "group2_block0_shortcut_pool"} <= names
    assert not any("_sk_" in name for name in names)
    assert model.get_layer("group2_block0_shortcut_pad").padding == ((0, 1), (0, 1))
    assert model.get_layer("group2_block0_shortcut_conv").strides == (1, 1)
    assert model(np.zeros((1, 32, 32, 3), "float32")).shape == (1, 128)


@pytest.mark.parametrize("kernel_size, bias", [(3, False), (1, True), (5, False)])
def test_conv_on_a_1x1_map_equals_keras_conv2d_values_and_gradients(kernel_size, bias):
    """kclr's Conv2D takes the centre tap on 1x1 maps: the same outputs and gradients."""
    from kclr.models.resnet import Conv2D

    x = tf.constant(np.random.default_rng(0).normal(size=(6, 1, 1, 8)).astype("float32"))
    reference = keras.layers.Conv2D(5, kernel_size, padding="same", use_bias=bias)
    fast = Conv2D(5, kernel_size, padding="same", use_bias=bias)
    reference.build(x.shape)
    fast.build(x.shape)
    weights = [np.random.default_rng(1).normal(size=w.shape) for w in reference.weights]
    reference.set_weights(weights)
    fast.set_weights(weights)
    assert fast._centre_tap_only(x.shape)
    results = []
    for layer in (reference, fast):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * tf.range(5, dtype=y.dtype))
        results.append([y, *tape.gradient(loss, [x, *layer.trainable_weights])])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-6, atol=1e-6)
    assert np.abs(np.asarray(results[1][2])).sum() > 0  # the kernel's gradient is not vacuous


def test_conv_keeps_keras_conv2d_off_1x1_maps_and_the_resnet_uses_it():
    from kclr.export import plain_model
    from kclr.models.resnet import Conv2D

    layer = Conv2D(4, 3, padding="same")
    assert not layer._centre_tap_only((2, 2, 2, 3))  # a 2x2 map: the convolution itself
    assert not Conv2D(4, 3, strides=2, padding="same")._centre_tap_only((2, 1, 1, 3))
    assert not Conv2D(4, 3, padding="same")._centre_tap_only((2, None, None, 3))
    encoder = ResNet(depth=18, width_multiplier=0.125, cifar_stem=False)
    convs = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(isinstance(layer, Conv2D) for layer in convs)
    # 32 px with the ImageNet stem: group 4 runs on 1x1 maps, and matches a plain rebuild.
    keras.utils.set_random_seed(0)
    images = np.random.default_rng(2).uniform(size=(3, 32, 32, 3)).astype("float32")
    plain = plain_model(encoder, 32)
    assert not any(type(layer) is Conv2D for layer in plain._flatten_layers())
    np.testing.assert_allclose(
        np.asarray(plain(images)), np.asarray(encoder(images, training=False)), atol=1e-5
    )
