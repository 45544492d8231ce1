"""Conversion of the authors' checkpoints (official variable names, random values)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from zoo_checkpoints import (
    random_arrays,
    read_names,
    reference_forward,
    scale_shapes,
    write_checkpoint,
)

import kclr
from kclr.zoo.converter import ConversionError, convert, official_layout


def _digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def check_every_variable_landed(arrays, encoder, head, supervised):
    """Each model variable equals exactly one checkpoint array, all distinct."""
    source = {_digest(v): k for k, v in arrays.items()}
    variables = list(encoder.weights)
    for part in (head, supervised):
        if part is not None:
            variables += part.weights
    seen = {}
    for variable in variables:
        digest = _digest(variable.numpy())
        assert digest in source, f"{variable.path} holds no checkpoint array"
        assert digest not in seen, f"{variable.path} and {seen[digest]} hold the same array"
        seen[digest] = variable.path
    return {variable_path: source[d] for d, variable_path in seen.items()}


def test_layout_matches_official_creation_order(reference_dir):
    shapes = read_names(reference_dir / "simclr-official-variables" / "tf1_r50_1x_sk0_names.txt")
    convs = [k for k in shapes if k.startswith("base_model/conv2d")]
    layout = official_layout(50)
    assert len([u for u in layout if u.kind == "conv"]) == len(convs) == 53
    sk = official_layout(50, sk_ratio=0.0625)
    assert len([u for u in sk if u.kind == "conv"]) == 87
    assert len([u for u in sk if u.kind == "bn"]) == 71
    # The authors' ResidualBlock with sk_ratio > 0: [pad,] avg-pool, conv, bn in shortcut_layers.
    basic_sk = {u.layer: u.tf2 for u in official_layout(18, sk_ratio=0.0625)}
    assert basic_sk["group1_block0_shortcut_conv"].endswith("/layers/0/shortcut_layers/1/conv2d")
    assert basic_sk["group2_block0_shortcut_bn"].endswith("/layers/0/shortcut_layers/3/bn")
    assert basic_sk["stem_bn3"].endswith("initial_conv_relu_max_pool/6/bn")


def test_convert_tf1_r50_1x(tmp_path, r50_tf1_shapes):
    arrays = random_arrays(r50_tf1_shapes, seed=1)
    arrays["global_step"] = np.array(250228, np.int64)
    arrays["base_model/conv2d/kernel/Momentum"] = np.zeros((7, 7, 3, 64), np.float32)
    arrays["head_contrastive/nl_0/dense/kernel/Momentum"] = np.zeros((2048, 2048), np.float32)
    prefix = write_checkpoint(tmp_path / "model.ckpt-250228", arrays)
    del arrays["global_step"], arrays["base_model/conv2d/kernel/Momentum"]
    del arrays["head_contrastive/nl_0/dense/kernel/Momentum"]

    encoder, head, supervised = convert(prefix, "r50_1x", out=tmp_path / "converted")
    assert head.version == "v2" and supervised.units == 1000
    placed = check_every_variable_landed(arrays, encoder, head, supervised)
    assert len(placed) == len(arrays) == 281  # every official variable used exactly once
    assert placed["stem_conv/kernel"] == "base_model/conv2d/kernel"
    assert placed["group1_block0_shortcut_conv/kernel"] == "base_model/conv2d_1/kernel"
    assert placed["group1_block0_conv1/kernel"] == "base_model/conv2d_2/kernel"
    assert (
        placed["group4_block2_bn3/moving_variance"]
        == "base_model/batch_normalization_52/moving_variance"
    )
    assert (
        placed["projection_head/nl_2_bn/gamma"] == "head_contrastive/nl_2/batch_normalization/gamma"
    )
    assert placed["head_supervised/bias"] == "head_supervised/linear_layer/dense/bias"

    images = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype("float32")
    expected = reference_forward(arrays, images)
    got = np.asarray(encoder(images, training=False))
    assert got.shape == (2, 2048)
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4)

    # The saved folder reloads to the same features (and heads).
    with_head = kclr.zoo.load(tmp_path / "converted", include_head=True)
    outputs = with_head(images)
    np.testing.assert_allclose(np.asarray(outputs["features"]), got, rtol=1e-5, atol=1e-5)
    assert tuple(outputs["projection"].shape) == (2, 128)
    assert tuple(outputs["logits"].shape) == (2, 1000)


def _small(r50_tf1_shapes, factor=0.125):
    return scale_shapes(r50_tf1_shapes, factor)


def test_ema_copy_selectable_and_slots_ignored(tmp_path, r50_tf1_shapes):
    shapes = _small(r50_tf1_shapes)
    raw = random_arrays(shapes, seed=2)
    ema = random_arrays(shapes, seed=3)
    arrays = dict(raw)
    arrays.update({f"ema_model/{k}": v for k, v in ema.items()})
    arrays.update(
        {f"{k}/Momentum": np.zeros_like(v) for k, v in raw.items() if k.endswith("kernel")}
    )
    prefix = write_checkpoint(tmp_path / "model.ckpt-1", arrays)
    encoder, head, _ = convert(prefix, {"depth": 50, "width_multiplier": 0.125})
    np.testing.assert_array_equal(
        encoder.get_layer("stem_conv").kernel.numpy(), raw["base_model/conv2d/kernel"]
    )
    encoder, head, _ = convert(prefix, {"depth": 50, "width_multiplier": 0.125}, ema=True)
    np.testing.assert_array_equal(
        encoder.get_layer("stem_conv").kernel.numpy(), ema["base_model/conv2d/kernel"]
    )
    placed = check_every_variable_landed(
        {f"ema_model/{k}": v for k, v in ema.items()}, encoder, head, None
    )
    assert placed["group2_block0_conv2/kernel"].startswith("ema_model/")
    # Without heads, the head variables are skipped, not an error.
    encoder, head, supervised = convert(
        prefix, {"depth": 50, "width_multiplier": 0.125}, include_heads=False
    )
    assert head is None and supervised is None


def test_ema_requested_but_absent(tmp_path, r50_tf1_shapes):
    prefix = write_checkpoint(tmp_path / "ckpt", random_arrays(_small(r50_tf1_shapes)))
    with pytest.raises(ConversionError, match="no EMA copy"):
        convert(prefix, {"depth": 50, "width_multiplier": 0.125}, ema=True)


def test_missing_unused_and_mismatched_variables_are_listed(tmp_path, r50_tf1_shapes):
    arrays = random_arrays(_small(r50_tf1_shapes))
    del arrays["base_model/batch_normalization_7/gamma"]
    arrays["base_model/extra_layer/weights"] = np.zeros((3,), np.float32)
    prefix = write_checkpoint(tmp_path / "ckpt", arrays)
    with pytest.raises(ConversionError) as info:
        convert(prefix, {"depth": 50, "width_multiplier": 0.125})
    message = str(info.value)
    assert "missing" in message and "group1_block1_bn3/gamma" in message
    assert "unused" in message and "base_model/extra_layer/weights" in message
    # Wrong width: shapes do not fit, reported with both shapes.
    prefix = write_checkpoint(tmp_path / "ckpt2", random_arrays(_small(r50_tf1_shapes)))
    with pytest.raises(
        ConversionError, match=r"shape mismatches.*stem_conv/kernel: model \(7, 7, 3, 16\)"
    ):
        convert(prefix, {"depth": 50, "width_multiplier": 0.25})
    # Wrong depth: different number of convolutions.
    with pytest.raises(
        ConversionError,
        match="has 53 encoder convolution kernels but the requested architecture has 104",
    ):
        convert(prefix, "r101_1x")


def test_convert_tf2_object_graph_keys_r18(tmp_path, reference_dir):
    shapes = read_names(
        reference_dir / "simclr-official-variables" / "r18_1x_sk0_gbn0_32_ckpt_keys.txt"
    )
    shapes.pop("_CHECKPOINTABLE_OBJECT_GRAPH")
    arrays = random_arrays(shapes, seed=4)
    prefix = write_checkpoint(tmp_path / "ckpt-1", arrays)
    encoder, head, supervised = convert(prefix, "r18_1x", cifar_stem=True)
    placed = check_every_variable_landed(arrays, encoder, head, supervised)
    assert len(placed) == len(arrays)
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    assert placed["group1_block0_shortcut_conv/kernel"] == (
        "model/resnet_model/block_groups/0/layers/0/shortcut_layers/0/conv2d/kernel" + suffix
    )
    assert (
        placed["stem_bn/gamma"]
        == "model/resnet_model/initial_conv_relu_max_pool/2/bn/gamma" + suffix
    )
    assert encoder.output.shape[-1] == 512 and head.output_dim == 128


def test_convert_tf1_sk_r50(tmp_path, reference_dir):
    shapes = read_names(reference_dir / "simclr-official-variables" / "tf1_r50_1x_sk1_names.txt")
    shapes = {k: v for k, v in shapes.items() if k.startswith("base_model/")}
    arrays = random_arrays(shapes, seed=5)
    prefix = write_checkpoint(tmp_path / "ckpt", arrays)
    encoder, _, _ = convert(prefix, "r50_1x_sk1", include_heads=False)
    placed = check_every_variable_landed(arrays, encoder, None, None)
    assert len(placed) == len(arrays)
    assert placed["group1_block0_sk_fc2/kernel"] == "base_model/conv2d_7/kernel"
    assert placed["stem_conv3/kernel"] == "base_model/conv2d_2/kernel"
    images = np.random.default_rng(5).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(encoder(images, training=False)),
        reference_forward(arrays, images, sk=True),
        rtol=2e-4,
        atol=2e-4,
    )


def test_scaled_shapes_match_official_2x(reference_dir, r50_tf1_shapes):
    """The 2x list derived by scaling has the official 2x shapes (checked against TF2 list)."""
    official = read_names(
        reference_dir / "simclr-official-variables" / "r50_2x_sk0_gbn1_224_names.txt"
    )
    scaled = scale_shapes(r50_tf1_shapes, 2)
    assert len(scaled) == len(official) == 281
    assert sorted(scaled.values()) == sorted(official.values())


@pytest.mark.slow
def test_convert_tf1_r50_2x(tmp_path, r50_tf1_shapes):
    shapes = {
        k: v for k, v in scale_shapes(r50_tf1_shapes, 2).items() if k.startswith("base_model/")
    }
    arrays = random_arrays(shapes, seed=6)
    prefix = write_checkpoint(tmp_path / "ckpt", arrays)
    encoder, _, _ = convert(prefix, "r50_2x")
    placed = check_every_variable_landed(arrays, encoder, None, None)
    assert len(placed) == len(arrays)
    images = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(encoder(images, training=False)),
        reference_forward(arrays, images),
        rtol=2e-4,
        atol=2e-4,
    )
