"""keras-hub and Keras Applications backbones as kclr encoders: what holds for the ResNets
holds for them (spec, pooled features, `kclr fit` and resume, zoo folder, gradient caching,
MirroredStrategy). Tiny models: a 2-layer ViT (hidden 32) and small CNNs at 32 px."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import kclr
from kclr import registry, spec
from kclr.models import KerasApplicationsEncoder, KerasHubEncoder
from kclr.run import config

SIZE = 32
VIT = {"patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 32, "mlp_dim": 64}
MOBILENET = {"model": "MobileNetV2", "model_arguments": {"alpha": 0.35}}


def needs_keras_hub():
    return pytest.importorskip("keras_hub", reason="keras-hub is optional (kclr[keras-hub])")


def vit_spec(**config_args):
    return {"name": "keras_hub", "config": {"class_name": "ViTBackbone", "config": dict(VIT),
                                            **config_args}}  # fmt: skip


def build(value, image_size=SIZE):
    return spec.build(registry.encoders, value, "encoder", run={"image_size": image_size})


def images(batch=2, seed=0):
    return np.random.default_rng(seed).uniform(size=(batch, SIZE, SIZE, 3)).astype("float32")


# ------------------------------------------------------------------------ building, pooling
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_vit_through_the_registry_pools_the_class_token_or_the_patch_tokens(pooling):
    needs_keras_hub()
    keras.utils.set_random_seed(0)
    encoder = build(vit_spec(pooling=pooling))
    assert isinstance(encoder, KerasHubEncoder) and encoder.pooling == pooling
    assert tuple(encoder.output.shape) == (None, 32) and encoder.feature_dim == 32
    assert tuple(encoder.backbone.get_config()["image_shape"]) == (SIZE, SIZE, 3)  # from the run
    x = images()
    tokens = np.asarray(encoder.backbone(x))  # [B, 1 + 16, 32]
    assert tokens.shape == (2, 1 + (SIZE // 8) ** 2, 32)
    expected = tokens[:, 0] if pooling == "cls" else tokens[:, 1:].mean(axis=1)
    np.testing.assert_allclose(np.asarray(encoder(x)), expected, rtol=1e-5, atol=1e-6)


def test_vit_defaults_to_the_class_token_and_mean_without_one():
    needs_keras_hub()
    assert build(vit_spec()).pooling == "cls"
    spec_ = vit_spec()
    spec_["config"]["config"]["use_class_token"] = False
    encoder = build(spec_)
    assert encoder.pooling == "mean"
    x = images()
    tokens = np.asarray(encoder.backbone(x))  # [B, 16, 32]: no class token
    np.testing.assert_allclose(np.asarray(encoder(x)), tokens.mean(axis=1), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="needs a class token"):
        build({**spec_, "config": {**spec_["config"], "pooling": "cls"}})
    with pytest.raises(ValueError, match="does not apply to a token sequence"):
        build(vit_spec(pooling="avg"))


def test_vit_input_scaling_and_image_size_checks():
    needs_keras_hub()
    keras.utils.set_random_seed(0)
    encoder = build(vit_spec(input_scale=2.0, input_offset=-1.0))
    x = images()
    np.testing.assert_allclose(
        np.asarray(encoder(x)), np.asarray(encoder.backbone(2 * x - 1))[:, 0], rtol=1e-5, atol=1e-6
    )
    wrong = vit_spec()
    wrong["config"]["config"]["image_shape"] = [16, 16, 3]
    with pytest.raises(ValueError, match="data.image_size is 32"):
        build(wrong)
    with pytest.raises(ValueError, match="Unknown keras-hub backbone.*ViTBackbone"):
        build({"name": "keras_hub", "config": {"class_name": "VitBackbone", "config": VIT}})


def test_keras_hub_preset_folder(tmp_path):
    keras_hub = needs_keras_hub()
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.ViTBackbone(image_shape=(SIZE, SIZE, 3), **VIT)
    backbone.save_to_preset(str(tmp_path / "vit"))
    encoder = build({"name": "keras_hub", "config": {"preset": str(tmp_path / "vit")}})
    x = images()
    np.testing.assert_allclose(
        np.asarray(encoder(x)), np.asarray(backbone(x))[:, 0], rtol=1e-5, atol=1e-6
    )
    assert encoder.backbone.__class__ is keras_hub.models.ViTBackbone
    saved = encoder.get_config()  # self-contained: the class and its config, not the folder
    assert saved["preset"] is None and saved["class_name"] == "ViTBackbone"
    assert saved["config"]["hidden_dim"] == 32
    with pytest.raises(ValueError, match="data.image_size is 64"):
        build({"name": "keras_hub", "config": {"preset": str(tmp_path / "vit")}}, image_size=64)
    with pytest.raises(ValueError, match="holds a ViTBackbone"):
        build({"name": "keras_hub",
               "config": {"preset": str(tmp_path / "vit"), "class_name": "DeiTBackbone"}})  # fmt: skip


def test_without_keras_hub_kclr_works_and_the_error_says_what_to_install():
    code = (
        "import sys; sys.modules['keras_hub'] = None\n"
        "from kclr import registry, spec\n"
        "assert 'keras_hub' in registry.encoders.names()\n"
        "registry.encoders.get({'name': 'resnet18', 'config': {'width_multiplier': 0.125}})\n"
        "try:\n"
        "    registry.encoders.get({'name': 'keras_hub', 'config': {'class_name': 'ViTBackbone'}})\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'pip install "kclr[keras-hub]"' in out.stdout
    assert "class_name: ViTBackbone" in out.stdout


def test_keras_application_pools_its_feature_map_and_scales_the_input():
    keras.utils.set_random_seed(0)
    encoder = build({"name": "keras_applications", "config": {"model": "EfficientNetV2B0"}})
    assert isinstance(encoder, KerasApplicationsEncoder) and encoder.pooling == "avg"
    assert tuple(encoder.output.shape) == (None, 1280) and encoder.feature_dim == 1280
    x = images()
    # EfficientNetV2 normalises inside the model (include_preprocessing) from [0, 255].
    feature_map = np.asarray(encoder.backbone(255 * x, training=False))
    np.testing.assert_allclose(
        np.asarray(encoder(x)), feature_map.mean(axis=(1, 2)), rtol=1e-4, atol=1e-5
    )
    raw = build({"name": "keras_applications",
                 "config": {"model": "EfficientNetV2B0", "preprocessing": False}})  # fmt: skip
    assert raw.model_arguments == {"include_preprocessing": False}
    assert not any(isinstance(layer, keras.layers.Rescaling) for layer in raw.backbone.layers)
    # A family normalised outside the model: MobileNetV2 takes [-1, 1].
    mobilenet = build({"name": "keras_applications", "config": MOBILENET})
    np.testing.assert_allclose(
        np.asarray(mobilenet.get_layer("application_preprocessing")(x)), 2 * x - 1, atol=1e-6
    )
    with pytest.raises(ValueError, match="Unknown Keras Applications model"):
        build({"name": "keras_applications", "config": {"model": "EfficientNetV9"}})


def test_image_size_is_a_run_argument_and_sync_bn_flips_every_batch_norm():
    assert spec.run_arguments(registry.encoders, "keras_applications") == ("image_size",)
    assert spec.run_arguments(registry.encoders, "keras_hub") == ("image_size",)
    values = {"encoder": {"name": "keras_applications",
                          "config": {"model": "MobileNetV2", "image_size": 32}}}  # fmt: skip
    with pytest.raises(config.ConfigError, match="set by the run"):
        config.resolve("tiny", values=values)
    encoder = build({"name": "keras_applications", "config": {**MOBILENET, "sync_bn": True}})
    norms = kclr.models.adapters.batch_norm_layers(encoder.backbone)
    assert len(norms) > 10 and all(layer.synchronized for layer in norms)
    plain = build({"name": "keras_applications", "config": MOBILENET})
    assert not any(layer.synchronized for layer in kclr.models.adapters.batch_norm_layers(plain))


# ------------------------------------------------------------------------------ zoo folder
def _families():
    return [
        pytest.param(vit_spec(pooling="mean"), id="vit"),
        pytest.param({"name": "keras_applications", "config": MOBILENET}, id="mobilenet_v2"),
        pytest.param(
            {"name": "keras_applications", "config": {"model": "EfficientNetV2B0"}},
            id="efficientnet_v2_b0",
        ),
    ]


@pytest.mark.parametrize("value", _families())
def test_zoo_folder_round_trip(value, tmp_path):
    if value["name"] == "keras_hub":
        needs_keras_hub()
    keras.utils.set_random_seed(0)
    encoder = build(value)
    head = kclr.models.ProjectionHead("v2", output_dim=8)
    folder = kclr.zoo.save(encoder, tmp_path / "export", head=head,
                           preprocessing={"image_size": SIZE})  # fmt: skip
    saved = json.loads((folder / "config.json").read_text())["encoder"]
    assert saved["name"] == value["name"] and saved["config"]["image_size"] == SIZE
    loaded = kclr.zoo.load(str(folder))
    assert type(loaded) is type(encoder) and loaded.pooling == encoder.pooling
    x = images(3)
    np.testing.assert_allclose(
        np.asarray(loaded(x, training=False)), np.asarray(encoder(x, training=False)), atol=1e-5
    )
    with_head = kclr.zoo.load(str(folder), include_head=True)
    np.testing.assert_allclose(
        np.asarray(with_head(x)["projection"]), np.asarray(head(encoder(x))[-1]), atol=1e-5
    )
    trainer = kclr.ContrastiveTrainer(encoder, head)  # Keras serialization, as `trainer.save`
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(trainer))
    assert again.encoder.get_config() == encoder.get_config()


# ----------------------------------------------------------------------- kclr fit, resume
class _Interrupt(Exception):
    pass


class _InterruptAtStep2(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == 1:
            raise _Interrupt()


@pytest.mark.slow  # ~40 s: two `kclr fit` runs (the data pipeline, export and grid dominate)
@pytest.mark.parametrize("value", _families())
def test_kclr_fit_end_to_end_resumes_from_the_checkpoint(value, tmp_path):
    """A 2-step `kclr fit` of the tiny preset with the encoder swapped: killed before step 2,
    `kclr fit --resume` restores step 1 by name, trains step 2 and exports the encoder."""
    from click.testing import CliRunner

    from kclr.cli import main
    from kclr.run import fit as runs

    if value["name"] == "keras_hub":
        needs_keras_hub()
    overrides = [
        f"encoder={json.dumps(value)}",
        f"data.image_size={SIZE}",
        "train.steps=2",
        "eval.monitor=false",
        "augmentation=eval",
    ]  # fmt: skip  (a cheap recipe)
    cfg = config.resolve("tiny", overrides=overrides)
    with pytest.raises(_Interrupt):
        runs.fit(cfg, out=tmp_path / "run", verbose=0, callbacks=[_InterruptAtStep2()])
    step_1 = np.load(tmp_path / "run" / "checkpoints" / "ckpt-000000001.npz")
    args = ["fit", "--preset", "tiny", "--out", str(tmp_path / "run"), "--resume", "-q"]
    result = CliRunner().invoke(main, args + [a for o in overrides for a in ("--set", o)])
    assert result.exit_code == 0, result.output
    assert "ckpt-000000001.npz (step 1)" in result.output and "step 2" in result.output
    export = kclr.zoo.load(str(tmp_path / "run" / "export"))
    assert type(export) is type(build(value))
    saved = json.loads((tmp_path / "run" / "export" / "config.json").read_text())
    assert saved["encoder"]["name"] == value["name"]
    # The restored variables are the encoder's: every one is in the checkpoint, by path.
    assert {v.path for v in export.weights} <= set(step_1.files)
    step_1.close()


# ------------------------------------------------------- gradient caching, MirroredStrategy
REPLICAS = 4


def _trainer(value, chunk=None, sync_bn=False, num_classes=None):
    keras.utils.set_random_seed(0)
    value = json.loads(json.dumps(value))
    if value["name"] == "keras_applications":
        value["config"]["sync_bn"] = sync_bn
    return kclr.ContrastiveTrainer(
        build(value),
        kclr.models.ProjectionHead("v2", output_dim=8, hidden_dim=16, sync_bn=sync_bn),
        num_classes=num_classes,
        gradient_cache_chunk_size=chunk,
    )


def _one_step(strategy, value, views, labels, initial, compile_kwargs, **kwargs):
    with strategy.scope():
        trainer = _trainer(value, **kwargs)
        trainer(views[:1], training=False)
        if initial is not None:
            trainer.set_weights(initial)
        start = [np.asarray(w) for w in trainer.get_weights()]
        trainer.compile(**compile_kwargs())
    data = tf.data.Dataset.from_tensor_slices({"views": views, "labels": labels})
    logs = trainer.fit(data.batch(len(views), drop_remainder=True), epochs=1, verbose=0).history
    return trainer, start, {k: v[-1] for k, v in logs.items()}


def _views(batch, dtype):
    rng = np.random.default_rng(0)
    views = rng.uniform(size=(batch, 2, SIZE, SIZE, 3)).astype(dtype)
    return views, rng.integers(0, 3, batch).astype("int32")


def _sgd():
    return {"optimizer": keras.optimizers.SGD(0.5), "loss": kclr.losses.NTXent(0.5)}


def _lars_supcon(learning_rate):
    return lambda: {
        "optimizer": kclr.optimizers.LARS(learning_rate, weight_decay=1e-4),
        "loss": kclr.losses.SupCon(temperature=0.5),
    }


def _replica_mean(variable, strategy):
    copies = strategy.experimental_local_results(variable.value)
    return np.mean([np.asarray(c) for c in copies], axis=0)


def _vit_and_slow_cnn():
    """The ViT (~15 s) by default; MobileNetV2 (~1 min: 4 replicas trace 150 layers) as slow."""
    cnn = pytest.param(_families()[1].values[0], marks=pytest.mark.slow, id="mobilenet_v2")
    return [_families()[0], cnn]


@pytest.mark.parametrize("value", _vit_and_slow_cnn())
@pytest.mark.parametrize("floatx", ["float64"], indirect=True)
def test_gradient_cache_equals_four_replicas(floatx, value, mirrored_strategy_4):
    """As `tests/trainer/test_gradient_cache.py`: K chunks on one device equal one step on
    K replicas with per-replica BatchNorm (`sync_bn=False`) and global negatives."""
    if value["name"] == "keras_hub":
        needs_keras_hub()
    views, labels = _views(8, floatx)
    mirrored, start, mirrored_logs = _one_step(
        mirrored_strategy_4, value, views, labels, None, _sgd
    )
    cached, _, cached_logs = _one_step(
        tf.distribute.get_strategy(), value, views, labels, start, _sgd, chunk=8 // REPLICAS
    )
    for key, expected in mirrored_logs.items():
        np.testing.assert_allclose(cached_logs[key], expected, rtol=1e-10, atol=1e-12, err_msg=key)
    moved = 0
    for w0, a, b in zip(start, cached.weights, mirrored.weights, strict=True):
        assert a.path == b.path
        expected = (
            _replica_mean(b, mirrored_strategy_4) if not b.trainable else np.asarray(b.numpy())
        )
        scale = max(np.abs(expected).max(), 1e-3)
        assert np.abs(a.numpy() - expected).max() / scale < 1e-8, a.path
        moved += a.trainable and np.abs(a.numpy() - w0).max() > 1e-6
    # the step moved the weights: not vacuous (moving statistics may move by < 1e-6,
    # and a few of MobileNetV2's ReLU6-saturated units get no gradient)
    assert moved >= 0.85 * len(cached.trainable_weights)


@pytest.mark.parametrize("value", _vit_and_slow_cnn())
@pytest.mark.parametrize("floatx", ["float64"], indirect=True)
def test_mirrored_step_equals_single_device(floatx, value, mirrored_strategy_2):
    """As `tests/distribute/test_mirrored.py`: with synchronised BatchNorm (`sync_bn=True`)
    a step on 2 replicas gives the loss and weights of one step on one device."""
    if value["name"] == "keras_hub":
        needs_keras_hub()
    views, labels = _views(4, floatx)
    compile_kwargs = _lars_supcon(0.5)
    single, start, single_logs = _one_step(
        tf.distribute.get_strategy(), value, views, labels, None, compile_kwargs,
        sync_bn=True, num_classes=3,
    )  # fmt: skip
    mirrored, _, mirrored_logs = _one_step(
        mirrored_strategy_2, value, views, labels, start, compile_kwargs,
        sync_bn=True, num_classes=3,
    )  # fmt: skip
    assert mirrored_strategy_2.num_replicas_in_sync == 2
    for key in ("loss", "sup_loss", "contrast_entropy", "contrast_acc", "learning_rate"):
        np.testing.assert_allclose(mirrored_logs[key], single_logs[key], rtol=1e-10, err_msg=key)
    for a, b in zip(single.weights, mirrored.weights, strict=True):
        assert a.path == b.path  # BN moving statistics included
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-9, atol=1e-11, err_msg=a.path)
