"""The one resolver: a catalog name, hf://, an https URL or a local folder -> a zoo folder."""

from __future__ import annotations

import numpy as np
import pytest
from bucket_server import BucketServer

import kclr
from kclr.models import ResNet
from kclr.zoo.sources.http import OfflineError
from kclr.zoo.sources.resolve import resolve


@pytest.fixture
def saved(tmp_path):
    encoder = ResNet(18, 0.25, cifar_stem=True, sync_bn=False, input_shape=(None, None, 3))
    folder = kclr.zoo.save(encoder, tmp_path / "run" / "export")
    return encoder, folder


def test_a_url_folder_is_downloaded_once_and_loads(zoo_env, saved):
    encoder, folder = saved
    with BucketServer() as server:
        for path in folder.iterdir():
            server.files[f"/models/tiny/{path.name}"] = path.read_bytes()
        url = f"{server.url}/models/tiny/"
        local = resolve(url, quiet=True)
        assert local.parent == zoo_env / "kclr-cache" / "urls"
        assert sorted(p.name for p in local.iterdir()) == sorted(p.name for p in folder.iterdir())
        fetched = len(server.requests)
        assert fetched == 4
        assert resolve(url, quiet=True) == local and len(server.requests) == fetched
        loaded = kclr.zoo.load(url)
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded(images, training=False), encoder(images, training=False), rtol=1e-5, atol=1e-6
    )


def test_a_url_folder_without_a_model_card_is_accepted(zoo_env, saved):
    _, folder = saved
    with BucketServer() as server:
        for name in ("config.json", "model.weights.h5", "metadata.json"):
            server.files[f"/m/{name}"] = (folder / name).read_bytes()
        local = resolve(f"{server.url}/m", quiet=True)
    assert sorted(p.name for p in local.iterdir()) == [
        "config.json",
        "metadata.json",
        "model.weights.h5",
    ]


def test_an_uncached_url_offline_names_the_fix(zoo_env, monkeypatch):
    monkeypatch.setenv("KCLR_OFFLINE", "1")
    with pytest.raises(OfflineError, match=r"kclr zoo pull https://example.org/m"):
        resolve("https://example.org/m")


def test_a_local_folder_and_a_run_directory_resolve_to_the_zoo_folder(saved):
    _, folder = saved
    assert resolve(folder) == folder
    assert resolve(folder.parent) == folder
    with pytest.raises(FileNotFoundError, match="neither a kclr zoo folder nor a run directory"):
        resolve(folder.parent.parent)


def test_an_unknown_name_suggests_catalog_names(zoo_env):
    with pytest.raises(KeyError, match="simclr-r50-1x"):
        resolve("simclr-r50-1y")
