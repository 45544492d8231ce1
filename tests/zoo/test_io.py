"""The zoo folder format: save / load, schema checks, overwrite rules, preprocessing."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import kclr
from kclr.models import ProjectionHead, ResNet, SupervisedHead
from kclr.zoo.folder.format import ZooFormatError


@pytest.fixture
def tiny():
    return ResNet(18, 0.25, cifar_stem=True, sync_bn=False, input_shape=(None, None, 3))


def test_save_writes_the_four_files_and_round_trips(tiny, tmp_path):
    head = ProjectionHead("v1", output_dim=8)
    folder = kclr.zoo.save(
        tiny,
        tmp_path / "m",
        head=head,
        supervised_head=SupervisedHead(5),
        metadata={"dataset": "demo"},
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "metadata.json",
        "model.weights.h5",
    ]
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["kclr_version"] == kclr.__version__ and meta["dataset"] == "demo"
    assert meta["feature_dim"] == 128
    assert len(meta["sha256"]["model.weights.h5"]) == 64
    config = json.loads((folder / "config.json").read_text())
    assert config["encoder"] == {
        "name": "resnet",
        "config": {
            "depth": 18,
            "width_multiplier": 0.25,
            "cifar_stem": True,
            "sk_ratio": 0.0,
            "sync_bn": False,
            "input_shape": [None, None, 3],
            "name": "resnet",
            "trainable": True,
        },
    }
    assert config["format"] == "kclr.zoo.model/2"
    assert config["projection_head"] == {
        "name": "projection_head",
        "config": {"hidden_dim": None, "output_dim": 8, "sync_bn": True, "version": "v1"},
    }
    assert config["supervised_head"] == {"name": "supervised_head", "config": {"num_classes": 5}}
    images = np.random.default_rng(0).uniform(size=(3, 16, 16, 3)).astype("float32")
    loaded = kclr.zoo.load(folder)
    assert isinstance(loaded, ResNet)
    assert tuple(loaded.preprocess(np.zeros((1, 300, 260, 3), np.uint8)).shape) == (1, 224, 224, 3)
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(tiny(images)), atol=1e-6)
    with_head = kclr.zoo.load(folder, include_head=True)
    assert with_head.zoo_config["projection_head"]["config"]["version"] == "v1"
    outputs = with_head(images)
    np.testing.assert_allclose(
        np.asarray(outputs["projection"]), np.asarray(head(tiny(images))[-1]), atol=1e-6
    )
    assert tuple(outputs["logits"].shape) == (3, 5)


def test_save_never_clobbers_other_folders(tiny, tmp_path):
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a kclr zoo folder"):
        kclr.zoo.save(tiny, other)
    assert (other / "notes.txt").read_text() == "keep me"
    # An existing zoo folder is replaced atomically.
    first = kclr.zoo.save(tiny, tmp_path / "m")
    before = json.loads((first / "metadata.json").read_text())["sha256"]["model.weights.h5"]
    tiny.get_layer("stem_conv").kernel.assign(np.zeros((3, 3, 3, 16), "float32"))
    kclr.zoo.save(tiny, tmp_path / "m")
    after = json.loads((first / "metadata.json").read_text())["sha256"]["model.weights.h5"]
    assert before != after
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "precious"]  # no staging leftovers


def test_save_refuses_unregistered_encoders(tmp_path):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
    with pytest.raises(ZooFormatError, match="only encoders registered"):
        kclr.zoo.save(model, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_load_missing_folder_and_files(tmp_path):
    with pytest.raises(ZooFormatError, match="config.json is missing"):
        kclr.zoo.load_folder(tmp_path)


def test_small_images_default_to_no_crop(tiny, tmp_path):
    kclr.zoo.save(tiny, tmp_path / "m", preprocessing={"image_size": 32})
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["preprocessing"] == {
        "image_size": 32,
        "crop_fraction": None,
        "input": "rgb_float_0_1",
    }
    assert "no crop" in (tmp_path / "m" / "README.md").read_text()
    loaded = kclr.zoo.load(tmp_path / "m")
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded.preprocess(images)), images, atol=1e-6)


def test_include_head_without_head(tiny, tmp_path):
    kclr.zoo.save(tiny, tmp_path / "m")
    with pytest.raises(ValueError, match="has no projection head"):
        kclr.zoo.load(tmp_path / "m", include_head=True)


def test_preprocess_matches_the_authors_centre_crop():
    # 375x500 -> 328x328 crop at (24, 86), then resize to 224 (official boxes).
    image = np.zeros((375, 500, 3), np.uint8)
    image[24 : 24 + 328, 86 : 86 + 328] = 255
    out = np.asarray(kclr.zoo.preprocess(image))
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0, atol=1e-6)  # the crop is exactly the white box
    shifted = image.copy()
    shifted[24 : 24 + 328, 85] = 0  # one column inside the crop darkened
    shifted[24 : 24 + 328, 86] = 0
    assert np.asarray(kclr.zoo.preprocess(shifted)).min() < 0.5
    batch = np.random.default_rng(0).uniform(size=(2, 40, 40, 3)).astype("float32")
    assert tuple(kclr.zoo.preprocess(batch, image_size=32).shape) == (2, 32, 32, 3)
    np.testing.assert_allclose(
        np.asarray(kclr.zoo.preprocess(batch, 40, crop_fraction=None)), batch, atol=1e-6
    )
    with pytest.raises(ValueError, match="expects RGB images"):
        kclr.zoo.preprocess(np.zeros((4, 4)))


def test_zoo_config_errors_name_the_field_and_the_closest_argument(tiny, tmp_path):
    from kclr.zoo.folder.format import validate_config

    config = json.loads((kclr.zoo.save(tiny, tmp_path / "m") / "config.json").read_text())
    config["projection_head"] = {"name": "projection_head", "config": {"versoin": "v1"}}
    with pytest.raises(
        ZooFormatError,
        match=r"config.json: Unknown argument `projection_head.config.versoin` for head "
        r"'projection_head'. Did you mean 'projection_head.config.version'\?",
    ):
        validate_config(config)
    config["projection_head"] = {"name": "lambda_head", "config": {}}
    with pytest.raises(
        ZooFormatError, match=r"Unknown head `projection_head.name='lambda_head'`.*Install the"
    ):
        validate_config(config)


class ScaledHead(ProjectionHead):
    """A plugin projection head: one argument more than the built-in head."""

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@pytest.fixture
def scaled_head():
    from kclr import registry

    registry.heads.add("scaled_head", ScaledHead, origin="kclr-test-plugin")
    yield ScaledHead
    registry.heads.reset()


def test_a_plugin_head_keeps_every_argument_through_a_zoo_folder(tiny, tmp_path, scaled_head):
    from kclr.zoo.folder.format import load_bundle

    head = scaled_head(scale=0.5, version="v2", output_dim=6, hidden_dim=12, sync_bn=False)
    folder = kclr.zoo.save(tiny, tmp_path / "m", head=head)
    written = json.loads((folder / "config.json").read_text())["projection_head"]
    assert written == {
        "name": "scaled_head",
        "config": {
            "scale": 0.5,
            "version": "v2",
            "output_dim": 6,
            "hidden_dim": 12,
            "sync_bn": False,
        },
    }
    loaded = load_bundle(folder)
    assert type(loaded.projection_head) is ScaledHead
    assert (loaded.projection_head.scale, loaded.projection_head.output_dim) == (0.5, 6)
    assert (loaded.projection_head.hidden_dim, loaded.projection_head.sync_bn) == (12, False)
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    expected = head(tiny(images, training=False), training=False)[-1]
    np.testing.assert_allclose(
        loaded.bundle(images, training=False)["projection"], expected, rtol=1e-5, atol=1e-6
    )


def test_nothing_writes_the_0_1_0_head_form(tiny, tmp_path):
    head = ProjectionHead("v1", output_dim=8)
    config = json.loads(
        (kclr.zoo.save(tiny, tmp_path / "m", head=head) / "config.json").read_text()
    )
    assert config["format"] == "kclr.zoo.model/2"
    assert config["projection_head"]["name"] == "projection_head"
    assert set(config["projection_head"]) == {"name", "config"}
