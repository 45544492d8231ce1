"""Conversion of the authors' checkpoints (official variable names, random values)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from zoo_checkpoints import (
    random_arrays,
    read_names,
    reference_forward,
    reference_heads,
    saved_model_keys,
    scale_shapes,
    tf2_order,
    write_checkpoint,
)

import kclr
from kclr.zoo.conversion import official
from kclr.zoo.conversion.converter import ConversionError, convert, official_layout

VARIABLES = "simclr-official-variables"


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
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    slot = "model/resnet_model/initial_conv_relu_max_pool/0/conv2d/kernel/.OPTIMIZER_SLOT/optimizer/momentum"
    extra = {
        "save_counter" + suffix: np.array(3, np.int64),
        "optimizer/iter" + suffix: np.array(100, np.int64),
        slot + suffix: np.zeros((3, 3, 3, 64), np.float32),
    }
    prefix = write_checkpoint(tmp_path / "ckpt-1", {**arrays, **extra})
    result = convert(prefix, "r18_1x", cifar_stem=True)
    encoder, head, supervised = result
    assert result.report["skipped"] == {
        "bookkeeping": ["optimizer/iter" + suffix, "save_counter" + suffix],
        "optimizer_slots": [slot + suffix],
    }
    placed = check_every_variable_landed(arrays, encoder, head, supervised)
    assert len(placed) == len(arrays)
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


# ----------------------------------------------------------------------------- variable order
def _tf1_names_of(paths, layout):
    """kclr paths -> TF1 names through the creation index of `layout` (heads by name)."""
    index = {}
    for kind in ("conv", "bn"):
        units = [u for u in layout if u.kind == kind]
        base = "conv2d" if kind == "conv" else "batch_normalization"
        for k, unit in enumerate(units):
            index[unit.layer] = f"base_model/{base}" + (f"_{k}" if k else "")
    names = []
    for path in paths:
        layer, leaf = path.rsplit("/", 1)
        if layer.startswith("projection_head/"):
            i = layer.split("/")[1].split("_")[1]
            kind = "dense" if layer.endswith("_dense") else "batch_normalization"
            names.append(f"head_contrastive/nl_{i}/{kind}/{leaf}")
        elif layer == "head_supervised":
            names.append(f"head_supervised/linear_layer/dense/{leaf}")
        else:
            names.append(f"{index[layer]}/{leaf}")
    return names


@pytest.mark.parametrize(
    "names_file, depth, sk, cifar",
    [
        ("r50_1x_sk0_gbn1_224_names.txt", 50, 0.0, False),
        ("r50_1x_sk1_gbn1_224_names.txt", 50, 0.0625, False),
        ("r50_2x_sk1_gbn1_224_names.txt", 50, 0.0625, False),
        ("r50_1x_sk0_gbn0_32_names.txt", 50, 0.0, True),
        ("r18_1x_sk0_gbn0_32_names.txt", 18, 0.0, True),
    ],
)
def test_variable_order_matches_the_authors_lists(reference_dir, names_file, depth, sk, cifar):
    rows = tf2_order(reference_dir / VARIABLES / names_file)
    layout = official_layout(depth, sk, cifar)
    order = official.variable_order(layout, head_layers=3, supervised=True)
    for sub, items in order.items():
        expected = [(name, trainable) for s, _, name, trainable in rows if s == sub]
        got = list(
            zip(_tf1_names_of([p for p, _ in items], layout), [t for _, t in items], strict=True)
        )
        assert got == expected, sub
    flat = _tf1_names_of(official.trainable_order(layout, 3, True), layout)
    assert flat == [name for _, _, name, trainable in rows if trainable]


def test_saved_model_key_helper_matches_the_authors_export(reference_dir, r50_tf1_shapes):
    """The test helper writes exactly the keys (and shapes) of the authors' export."""
    names = reference_dir / VARIABLES / "r50_1x_sk0_gbn1_224_names.txt"
    for form, listing in (
        ("indexed", "r50_1x_sk0_gbn1_224_savedmodel_keys.txt"),
        ("trainable_list", "r50_1x_sk0_gbn0_224_savedmodel_trainablelist_keys.txt"),
    ):
        expected = read_names(reference_dir / VARIABLES / listing)
        expected.pop("_CHECKPOINTABLE_OBJECT_GRAPH")
        shapes = {k: np.zeros(v, np.int8) for k, v in r50_tf1_shapes.items()}
        got = {k: v.shape for k, v in saved_model_keys(shapes, names, form).items()}
        assert got == expected


# ----------------------------------------------------------------------------- SavedModel keys
@pytest.mark.parametrize("form", ["indexed", "trainable_list"])
def test_convert_saved_model_index_keys(tmp_path, reference_dir, r50_tf1_shapes, form):
    arrays = random_arrays(_small(r50_tf1_shapes), seed=11)
    names = reference_dir / VARIABLES / "r50_1x_sk0_gbn1_224_names.txt"
    keys = saved_model_keys(arrays, names, form)
    keys["global_step"] = np.array(37535, np.int64)  # bookkeeping is skipped, not an error
    write_checkpoint(tmp_path / "saved_model" / "variables" / "variables", keys)
    arch = {"depth": 50, "width_multiplier": 0.125}
    result = convert(tmp_path / "saved_model", arch, out=tmp_path / "out")
    encoder, head, supervised = result
    assert result.report["key_form"] == "tf2-indexed"
    assert result.report["skipped"] == {"bookkeeping": ["global_step"]}
    placed = check_every_variable_landed(keys, encoder, head, supervised)
    assert len(placed) == len(keys) - 1 == 281
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    if form == "indexed":
        assert placed["stem_conv/kernel"] == "model/resnet_model/variables/0" + suffix
        assert placed["stem_bn/moving_mean"] == "model/resnet_model/variables/159" + suffix
        assert placed["projection_head/nl_0_bn/gamma"] == (
            "model/_projection_head/variables/0" + suffix
        )
    else:
        assert placed["head_supervised/bias"] == "trainable_variables_list/168" + suffix
        assert placed["projection_head/nl_2_bn/moving_variance"] == (
            "model/_projection_head/variables/13" + suffix
        )
    # Same values as the TF1 conversion of the same arrays (checked against the reference).
    images = np.random.default_rng(11).uniform(size=(2, 32, 32, 3)).astype("float32")
    features = np.asarray(encoder(images, training=False))
    np.testing.assert_allclose(features, reference_forward(arrays, images), rtol=2e-4, atol=2e-4)
    projection, logits = reference_heads(arrays, features)
    np.testing.assert_allclose(np.asarray(head(features)[-1]), projection, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(np.asarray(supervised(features)), logits, rtol=2e-4, atol=2e-4)


def test_index_keys_missing_or_out_of_range_are_named(tmp_path, reference_dir, r50_tf1_shapes):
    arrays = random_arrays(_small(r50_tf1_shapes), seed=12)
    names = reference_dir / VARIABLES / "r50_1x_sk0_gbn1_224_names.txt"
    keys = saved_model_keys(arrays, names)
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    del keys["model/resnet_model/variables/3" + suffix]  # group1_block0_shortcut_conv kernel
    keys["model/resnet_model/variables/999" + suffix] = np.zeros(3, np.float32)
    write_checkpoint(tmp_path / "sm" / "variables" / "variables", keys)
    with pytest.raises(ConversionError) as info:
        convert(tmp_path / "sm", {"depth": 50, "width_multiplier": 0.125})
    message = str(info.value)
    assert "missing (no checkpoint value) [1]: group1_block0_shortcut_conv/kernel" in message
    assert "unused checkpoint variables [1]: model/resnet_model/variables/999" in message


# ----------------------------------------------------------------------------- SimCLRv2 TF1
def _v2_checkpoint(r50_tf1_shapes, with_ema_supervised=False):
    shapes = _small(r50_tf1_shapes)
    raw = random_arrays(shapes, seed=2)
    ema = random_arrays(shapes, seed=3)
    if not with_ema_supervised:
        ema = {k: v for k, v in ema.items() if not k.startswith("head_supervised/")}
    arrays = dict(raw)
    arrays.update({f"ema_model/{k}": v for k, v in ema.items()})
    arrays.update({f"{k}/Momentum": np.zeros_like(v) for k, v in raw.items()})
    arrays["global_step"] = np.array(250228, np.int64)
    arrays["head_contrastive/memory"] = np.ones((16, 128), np.float32)  # MoCo-style buffer
    return raw, ema, arrays


def test_v2_checkpoint_with_ema_slots_step_and_memory(tmp_path, r50_tf1_shapes):
    raw, ema, arrays = _v2_checkpoint(r50_tf1_shapes)
    prefix = write_checkpoint(tmp_path / "model.ckpt-250228", arrays)
    arch = {"depth": 50, "width_multiplier": 0.125}

    result = convert(prefix, arch, out=tmp_path / "raw")
    encoder, head, supervised = result
    placed = check_every_variable_landed(raw, encoder, head, supervised)
    assert len(placed) == len(raw) == 281 and not any(v.startswith("ema_") for v in placed.values())
    skipped = result.report["skipped"]
    assert skipped["bookkeeping"] == ["global_step"]
    assert skipped["buffers"] == ["head_contrastive/memory"]
    assert len(skipped["optimizer_slots"]) == 281
    assert len(skipped["unselected_copy"]) == 279 and result.report["notes"] == []
    assert result.report["summary"] == (
        "Skipped 562 non-model variables: bookkeeping (global_step, object graph) 1, "
        "optimizer slots 281, buffers (memory/queue) 1, unselected EMA/raw copy 279."
    )
    meta = json.loads((tmp_path / "raw" / "metadata.json").read_text())["converted_from"]
    assert meta["skipped_variables"] == skipped and meta["variables_assigned"] == 281

    result = convert(prefix, arch, ema=True)
    encoder, head, supervised = result
    expected = {k: v for k, v in ema.items()}
    expected.update({k: v for k, v in raw.items() if k.startswith("head_supervised/")})
    placed = check_every_variable_landed(expected, encoder, head, supervised)
    assert len(placed) == 281
    assert result.report["notes"] == [
        "ema=True: the checkpoint has no EMA copy of head_supervised; kept its raw "
        "(non-EMA) weights for that head."
    ]
    assert (
        "head_supervised/linear_layer/dense/kernel"
        not in result.report["skipped"]["unselected_copy"]
    )
    images = np.random.default_rng(4).uniform(size=(2, 32, 32, 3)).astype("float32")
    features = np.asarray(encoder(images, training=False))
    np.testing.assert_allclose(features, reference_forward(expected, images), rtol=2e-4, atol=2e-4)
    _, logits = reference_heads(expected, features)
    np.testing.assert_allclose(np.asarray(supervised(features)), logits, rtol=2e-4, atol=2e-4)

    # Without heads, the head variables are skipped and listed, not an error.
    result = convert(prefix, arch, include_heads=False)
    assert result[1] is None and result[2] is None
    assert len(result.report["skipped"]["heads_not_requested"]) == 16


def test_ft_proj_selector_feeds_the_first_head_layer(tmp_path, r50_tf1_shapes):
    arrays = random_arrays(_small(r50_tf1_shapes), seed=13)
    prefix = write_checkpoint(tmp_path / "model.ckpt-3754", arrays)
    convert(prefix, "r50_0.125x", out=tmp_path / "ft10", ft_proj_selector=1)
    model = kclr.zoo.load(tmp_path / "ft10", include_head=True)
    images = np.random.default_rng(5).uniform(size=(2, 32, 32, 3)).astype("float32")
    outputs = model(images)
    features = np.asarray(outputs["features"])
    _, logits = reference_heads(arrays, features, ft_proj_selector=1)
    _, wrong = reference_heads(arrays, features, ft_proj_selector=0)
    np.testing.assert_allclose(np.asarray(outputs["logits"]), logits, rtol=2e-4, atol=2e-4)
    assert np.abs(np.asarray(outputs["logits"]) - wrong).max() > 1e-3
    with pytest.raises(ConversionError, match="has no projection head"):
        base = {k: v for k, v in arrays.items() if not k.startswith("head_contrastive")}
        convert(write_checkpoint(tmp_path / "v1", base), "r50_0.125x", ft_proj_selector=1)
