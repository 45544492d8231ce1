"""The one door for models, `kclr.zoo.door.open_model`: everything a command takes as MODEL."""

from __future__ import annotations

import numpy as np
import pytest

import kclr
from kclr.models import ProjectionHead, ResNet
from kclr.zoo import door
from kclr.zoo.folder import format as zoo_format


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory as `kclr fit` leaves it: the zoo folder in `export/`, the run config in
    its metadata."""
    root = tmp_path_factory.mktemp("run")
    encoder = ResNet(18, 0.25, cifar_stem=True, sync_bn=False, input_shape=(None, None, 3))
    head = ProjectionHead("v2", output_dim=8)
    head.build(encoder.output.shape)
    saved = {"linear_eval": {"name": "linear", "config": {"epochs": 3}}}
    kclr.zoo.save(encoder, root / "export", head=head, metadata={"config": saved},
                  preprocessing={"image_size": 16})  # fmt: skip
    return root, encoder


def test_a_run_directory_opens_once_with_encoder_head_config_and_run_config(run_dir, monkeypatch):
    root, original = run_dir
    calls = []
    real = zoo_format.load_bundle
    monkeypatch.setattr(zoo_format, "load_bundle", lambda *a, **k: calls.append(a) or real(*a, **k))
    opened = door.open_model(str(root))
    assert len(calls) == 1  # the weights are read once, the heads come with them
    assert opened.folder == root / "export" and opened.output == "features"
    assert opened.image_size == 16 and opened.config["format"] == "kclr.zoo.model/2"
    assert opened.run_config == {"linear_eval": {"name": "linear", "config": {"epochs": 3}}}
    assert isinstance(opened.projection_head, ProjectionHead)
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(opened.encoder(images)), np.asarray(original(images)), atol=1e-5
    )
    outputs = opened.bundle(images)
    np.testing.assert_allclose(
        np.asarray(outputs["projection"]), np.asarray(opened.projection_head(outputs["features"])[-1]),
        atol=1e-5,
    )  # fmt: skip
    assert opened.encoder.zoo_config == opened.config  # the input contract travels with it
    # `kclr.zoo.load` goes through the same door: one read, with or without the head.
    calls.clear()
    with_head = kclr.zoo.load(str(root), include_head=True)
    assert len(calls) == 1 and set(with_head(images)) == {"features", "projection"}


def test_a_missing_path_and_an_unknown_name_are_clear_errors(tmp_path):
    with pytest.raises(door.ModelNotFoundError, match="does not exist. Expected a run directory"):
        door.open_model(str(tmp_path / "nope"))
    with pytest.raises(door.ModelNotFoundError, match=r"classifier file written by `kclr finetune"):
        door.open_model(str(tmp_path / "ft.keras"))
    with pytest.raises(kclr.zoo.catalog.UnknownModelError, match="Did you mean 'simclr-r50-1x'"):
        door.open_model("simclr-r50-1y")


def test_a_built_encoder_is_taken_as_it_is(run_dir):
    encoder = ResNet(18, 0.25, cifar_stem=True, sync_bn=False, input_shape=(24, 24, 3))
    opened = door.open_model(encoder)
    assert opened.model is encoder and opened.output == "features" and opened.image_size == 24
    assert opened.folder is None and opened.run_config is None
