"""Pull through huggingface_hub from a local Hub-like server; cache; offline use."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import kclr
from kclr.models import ProjectionHead, ResNet
from kclr.testing.hub_server import HubServer
from kclr.zoo.folder.safety import IntegrityError
from kclr.zoo.sources.http import OfflineError


@pytest.fixture
def exported(zoo_env):
    encoder = ResNet(18, 0.25, cifar_stem=True, input_shape=(None, None, 3))
    head = ProjectionHead("v2", output_dim=8)
    folder = kclr.zoo.save(encoder, zoo_env / "export", head=head, metadata={"title": "tiny"})
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    return folder, images, np.asarray(encoder(images))


@pytest.fixture
def hub(monkeypatch):
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def test_pull_from_hub_then_offline(exported, hub, monkeypatch):
    folder, images, expected = exported
    commit = hub.add_repo("kclr-test/tiny", folder)
    encoder = kclr.zoo.load("hf://kclr-test/tiny")
    np.testing.assert_allclose(np.asarray(encoder(images)), expected, atol=1e-6)
    assert any(path.startswith("/kclr-test/tiny/resolve/") for _, path in hub.requests)
    model = kclr.zoo.load(f"hf://kclr-test/tiny@{commit}", include_head=True)
    assert tuple(model(images)["projection"].shape) == (2, 8)

    # Offline: served from the Hub cache, no request reaches the server.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(hub.requests)
    again = kclr.zoo.load("hf://kclr-test/tiny")
    np.testing.assert_allclose(np.asarray(again(images)), expected, atol=1e-6)
    assert len(hub.requests) == before


def test_offline_and_not_cached_is_a_clear_error(zoo_env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        OfflineError,
        match=r"hf://someone/absent is not in the local Hub cache.*kclr zoo pull hf://someone/absent",
    ):
        kclr.zoo.load("hf://someone/absent")


def test_unknown_repo_and_revision(exported, hub):
    folder, _, _ = exported
    hub.add_repo("kclr-test/tiny", folder)
    with pytest.raises(FileNotFoundError, match="'kclr-test/nothing' was not found"):
        kclr.zoo.load("hf://kclr-test/nothing")
    with pytest.raises(FileNotFoundError, match="Revision 'v9' does not exist"):
        kclr.zoo.load("hf://kclr-test/tiny@v9")
    with pytest.raises(ValueError, match="Invalid Hub reference"):
        kclr.zoo.load("hf://not a repo")


def test_tampered_hub_weights_are_refused(exported, hub, zoo_env):
    folder, _, _ = exported
    tampered = zoo_env / "tampered"
    shutil.copytree(folder, tampered)
    with open(tampered / "model.weights.h5", "r+b") as handle:
        handle.seek(-64, 2)
        handle.write(b"\x01" * 16)
    hub.add_repo("kclr-test/tampered", tampered)
    with pytest.raises(
        IntegrityError,
        match=r"model\.weights\.h5.*sha256 is [0-9a-f]{64} but metadata\.json records [0-9a-f]{64}",
    ):
        kclr.zoo.load("hf://kclr-test/tampered")
