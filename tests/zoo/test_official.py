"""Catalog names resolve to the authors' checkpoints (served locally at the bucket's URL layout)."""

from __future__ import annotations

import dataclasses
import zipfile

import numpy as np
import pytest
from zoo_checkpoints import random_arrays, reference_forward, scale_shapes, write_checkpoint

import kclr
from kclr.testing.hub_server import StaticServer
from kclr.zoo import catalog
from kclr.zoo.download import OfflineError
from kclr.zoo.safety import IntegrityError

WIDTH = 0.125  # the real catalog entries at 1/8 width keep the test small


@pytest.fixture
def small_catalog(monkeypatch):
    """The packaged catalog with every architecture shrunk to 1/8 width (URLs unchanged)."""
    real = catalog._load()
    small = {
        name: dataclasses.replace(entry, arch={**entry.arch, "width_multiplier": WIDTH})
        for name, entry in real.items()
    }
    monkeypatch.setattr(catalog, "_load", lambda: small)
    return small


@pytest.fixture
def bucket(zoo_env, monkeypatch):
    root = zoo_env / "bucket"
    root.mkdir()
    with StaticServer(root) as server:
        monkeypatch.setenv("KCLR_OFFICIAL_CHECKPOINT_URL", server.url)
        yield root, server


def test_v1_zip_download_convert_cache_offline(
    small_catalog, bucket, zoo_env, r50_tf1_shapes, monkeypatch
):
    root, server = bucket
    shapes = {
        k: v for k, v in scale_shapes(r50_tf1_shapes, WIDTH).items() if k.startswith("base_model/")
    }
    arrays = random_arrays(shapes, seed=7)
    work = zoo_env / "work" / "ResNet50_1x"
    work.mkdir(parents=True)
    write_checkpoint(work / "model.ckpt-225206", arrays)
    (work / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-225206"\n')
    archive = root / "simclr-gcs" / "checkpoints" / "ResNet50_1x.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as handle:
        for path in work.iterdir():
            handle.write(path, f"ResNet50_1x/{path.name}")

    encoder = kclr.zoo.load("simclr-r50-1x")
    assert ("GET", "/simclr-gcs/checkpoints/ResNet50_1x.zip") in server.requests
    images = np.random.default_rng(1).uniform(size=(2, 64, 64, 3)).astype("float32")
    expected = reference_forward(arrays, images)
    np.testing.assert_allclose(np.asarray(encoder(images)), expected, rtol=2e-4, atol=2e-4)
    cached = kclr.zoo.cache_dir() / "zoo" / "simclr-r50-1x"
    card = (cached / "README.md").read_text()
    assert "69.1" in card and "license: apache-2.0" in card

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(server.requests)
    again = kclr.zoo.load("simclr-r50-1x")
    np.testing.assert_allclose(np.asarray(again(images)), expected, rtol=2e-4, atol=2e-4)
    assert len(server.requests) == before
    with pytest.raises(ValueError, match="no projection head"):
        kclr.zoo.load("simclr-r50-1x", include_head=True)


def test_v2_files_with_head(small_catalog, bucket, zoo_env, r50_tf1_shapes):
    root, server = bucket
    arrays = random_arrays(scale_shapes(r50_tf1_shapes, WIDTH), seed=8)
    folder = root / "simclr-checkpoints" / "simclrv2" / "pretrained" / "r50_1x_sk0"
    folder.mkdir(parents=True)
    write_checkpoint(folder / "model.ckpt-250228", arrays)
    model = kclr.zoo.load("simclrv2-r50-1x", include_head=True)
    requested = {path for _, path in server.requests}
    assert "/simclr-checkpoints/simclrv2/pretrained/r50_1x_sk0/model.ckpt-250228.index" in requested
    images = np.random.default_rng(2).uniform(size=(2, 32, 32, 3)).astype("float32")
    outputs = model(images)
    np.testing.assert_allclose(
        np.asarray(outputs["features"]), reference_forward(arrays, images), rtol=2e-4, atol=2e-4
    )
    assert tuple(outputs["projection"].shape) == (2, 128)


def test_pinned_sha256_of_download_is_enforced(small_catalog, bucket, zoo_env, monkeypatch):
    root, _ = bucket
    entry = small_catalog["simclr-r50-2x"]
    pinned = dict(entry.checkpoint, sha256={"ResNet50_2x.zip": "0" * 64})
    small_catalog["simclr-r50-2x"] = dataclasses.replace(entry, checkpoint=pinned)
    archive = root / "simclr-gcs" / "checkpoints" / "ResNet50_2x.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("ResNet50_2x/checkpoint", "not the real thing")
    with pytest.raises(
        IntegrityError, match=r"ResNet50_2x\.zip.*sha256 is [0-9a-f]{64} but 0{64} was expected"
    ):
        kclr.zoo.load("simclr-r50-2x")
    downloads = kclr.zoo.cache_dir() / "downloads" / "simclr-r50-2x"
    assert not any(downloads.glob("ResNet50_2x.zip*"))  # the bad download is not kept


def test_offline_without_cache_says_what_to_download(zoo_env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        kclr.zoo.load("simclrv2-r50-2x")
    message = str(info.value)
    assert "offline mode is on" in message
    assert (
        "https://storage.googleapis.com/simclr-checkpoints/simclrv2/pretrained/r50_2x_sk0/model.ckpt-250228.index"
        in message
    )
    assert "kclr zoo convert --from" in message and "--arch r50_2x_sk0" in message


def test_unreachable_bucket_is_a_clear_error(zoo_env, monkeypatch):
    monkeypatch.setenv("KCLR_OFFICIAL_CHECKPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(
        OfflineError,
        match=r"Could not download http://127\.0\.0\.1:9/simclr-gcs/checkpoints/ResNet50_4x\.zip",
    ):
        kclr.zoo.load("simclr-r50-4x")


def test_unknown_name_suggests():
    with pytest.raises(KeyError, match="Did you mean 'simclr-r50-1x'"):
        kclr.zoo.load("simclr-r50-1")
