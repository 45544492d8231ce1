"""Catalog names resolve to the authors' checkpoints (served locally at the bucket's layout)."""

from __future__ import annotations

import io
import json
import pathlib
import zipfile

import numpy as np
import pytest
from bucket_server import LOGIN_PAGE, BucketServer
from zoo_checkpoints import random_arrays, reference_forward, scale_shapes, write_checkpoint

import kclr
from kclr.testing.hub_server import HubServer
from kclr.zoo.folder.safety import IntegrityError
from kclr.zoo.sources.http import DownloadError, OfflineError

WIDTH = 0.125  # the real catalog entries at 1/8 width keep the test small
V1 = "/simclr-checkpoints/simclrv1/pretrain/1x/model.ckpt-225206"
V2 = "/simclr-checkpoints/simclrv2/pretrained/r50_1x_sk0/model.ckpt-250228"


@pytest.fixture
def bucket(zoo_env, monkeypatch):
    with BucketServer() as server:
        monkeypatch.setenv("KCLR_OFFICIAL_CHECKPOINT_URL", server.url)
        yield server


def _checkpoint_files(tmp: pathlib.Path, arrays, step: int) -> dict[str, bytes]:
    prefix = write_checkpoint(tmp / f"model.ckpt-{step}", arrays)
    return {
        ".index": pathlib.Path(prefix + ".index").read_bytes(),
        ".data-00000-of-00001": pathlib.Path(prefix + ".data-00000-of-00001").read_bytes(),
    }


def _serve(server, base, files):
    for suffix, data in files.items():
        server.files[base + suffix] = data


@pytest.fixture
def v1_arrays(r50_tf1_shapes):
    shapes = {
        k: v for k, v in scale_shapes(r50_tf1_shapes, WIDTH).items() if k.startswith("base_model/")
    }
    return random_arrays(shapes, seed=7)


def test_v1_anonymous_files_first(small_catalog, bucket, zoo_env, v1_arrays, monkeypatch):
    arrays = dict(v1_arrays, global_step=np.array(225206, np.int64))
    _serve(bucket, V1, _checkpoint_files(zoo_env, arrays, 225206))
    encoder = kclr.zoo.load("simclr-r50-1x")
    assert [path for path, _ in bucket.requests] == [V1 + ".index", V1 + ".data-00000-of-00001"]
    images = np.random.default_rng(1).uniform(size=(2, 64, 64, 3)).astype("float32")
    expected = reference_forward(v1_arrays, images)
    np.testing.assert_allclose(np.asarray(encoder(images)), expected, rtol=2e-4, atol=2e-4)
    cached = kclr.zoo.cache_dir() / "zoo" / "simclr-r50-1x"
    card = (cached / "README.md").read_text()
    meta = json.loads((cached / "metadata.json").read_text())
    source = meta["source"]
    assert source["source_url"] == bucket.url + V1 + ".index"
    sha = source["files"]["model.ckpt-225206.index"]["sha256"]
    assert "69.1" in card and "license: apache-2.0" in card and sha in card
    assert meta["converted_from"]["skipped_variables"] == {"bookkeeping": ["global_step"]}

    # Offline with the cache: no request reaches the server.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(bucket.requests)
    again = kclr.zoo.load("simclr-r50-1x")
    np.testing.assert_allclose(np.asarray(again(images)), expected, rtol=2e-4, atol=2e-4)
    assert len(bucket.requests) == before
    with pytest.raises(ValueError, match="no projection head"):
        kclr.zoo.load("simclr-r50-1x", include_head=True)


def test_v1_zip_is_the_fallback_after_a_login_page(
    small_catalog, bucket, zoo_env, v1_arrays, capsys
):
    files = _checkpoint_files(zoo_env, v1_arrays, 225206)
    _serve(bucket, V1, files)
    bucket.faults[V1 + ".index"] = ["login"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        for suffix, data in files.items():
            handle.writestr(f"ResNet50_1x/model.ckpt-225206{suffix}", data)
        handle.writestr("ResNet50_1x/checkpoint", 'model_checkpoint_path: "model.ckpt-225206"\n')
    bucket.files["/simclr-gcs/checkpoints/ResNet50_1x.zip"] = archive.getvalue()
    encoder = kclr.zoo.load("simclr-r50-1x")
    assert [path for path, _ in bucket.requests] == [
        V1 + ".index",
        "/simclr-gcs/checkpoints/ResNet50_1x.zip",
    ]
    downloads = kclr.zoo.cache_dir() / "downloads" / "simclr-r50-1x"
    assert sorted(p.name for p in downloads.iterdir()) == ["ResNet50_1x.zip"]  # no login page
    images = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(encoder(images)), reference_forward(v1_arrays, images), rtol=2e-4, atol=2e-4
    )
    err = capsys.readouterr().err
    assert "Skipped no variables." in err


def test_v2_files_with_head(small_catalog, bucket, zoo_env, r50_tf1_shapes, capsys):
    arrays = random_arrays(scale_shapes(r50_tf1_shapes, WIDTH), seed=8)
    arrays["memory"] = np.zeros((8, 128), np.float32)
    _serve(bucket, V2, _checkpoint_files(zoo_env, arrays, 250228))
    model = kclr.zoo.load("simclrv2-r50-1x-sk0", include_head=True)
    assert (kclr.zoo.cache_dir() / "zoo" / "simclrv2-r50-1x-sk0").is_dir()
    images = np.random.default_rng(2).uniform(size=(2, 32, 32, 3)).astype("float32")
    outputs = model(images)
    del arrays["memory"]
    np.testing.assert_allclose(
        np.asarray(outputs["features"]), reference_forward(arrays, images), rtol=2e-4, atol=2e-4
    )
    assert tuple(outputs["projection"].shape) == (2, 128)
    assert "Skipped 1 non-model variables: buffers (memory/queue) 1." in capsys.readouterr().err


@pytest.mark.parametrize("fault, words", [("403", "access denied at"), ("404", "not found at")])
def test_http_errors_name_the_url_and_the_alternatives(small_catalog, bucket, fault, words):
    bucket.faults[V2 + ".index"] = [fault]
    with pytest.raises(DownloadError) as info:
        kclr.zoo.load("simclrv2-r50-1x-sk0")
    message = str(info.value)
    assert f"{words} {bucket.url}{V2}.index (HTTP {fault})" in message
    assert "KCLR_OFFICIAL_CHECKPOINT_URL" in message and "--arch r50_0.125x_sk0" in message
    assert "gsutil cp -r gs://simclr-checkpoints/simclrv2/pretrained/r50_1x_sk0" in message


def test_a_changed_file_after_first_use_is_refused(small_catalog, bucket, zoo_env, r50_tf1_shapes):
    arrays = random_arrays(scale_shapes(r50_tf1_shapes, WIDTH), seed=9)
    _serve(bucket, V2, _checkpoint_files(zoo_env / "a", arrays, 250228))
    kclr.zoo.load("simclrv2-r50-1x-sk0")
    record = json.loads((kclr.zoo.cache_dir() / "downloads" / "sha256.json").read_text())
    first = record[bucket.url + V2 + ".index"]
    # The server now serves other weights; the cache is cleared (the record is kept).
    other = random_arrays(scale_shapes(r50_tf1_shapes, WIDTH), seed=10)
    _serve(bucket, V2, _checkpoint_files(zoo_env / "b", other, 250228))
    kclr.zoo.cache.clear()
    with pytest.raises(IntegrityError) as info:
        kclr.zoo.load("simclrv2-r50-1x-sk0")
    message = str(info.value)
    assert first in message and "was recorded when it was first downloaded" in message
    downloads = kclr.zoo.cache_dir() / "downloads" / "simclrv2-r50-1x-sk0"
    assert not any(downloads.iterdir())  # the changed file was not kept


def test_a_modified_cached_download_is_refused(small_catalog, bucket, zoo_env, r50_tf1_shapes):
    import shutil

    arrays = random_arrays(scale_shapes(r50_tf1_shapes, WIDTH), seed=11)
    _serve(bucket, V2, _checkpoint_files(zoo_env, arrays, 250228))
    kclr.zoo.load("simclrv2-r50-1x-sk0")
    shutil.rmtree(kclr.zoo.cache_dir() / "zoo")  # keep the downloads, convert again
    data = kclr.zoo.cache_dir() / "downloads" / "simclrv2-r50-1x-sk0"
    data = data / "model.ckpt-250228.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:-4] + b"\0\0\0\0")
    before = len(bucket.requests)
    with pytest.raises(IntegrityError, match="model.ckpt-250228.data-00000-of-00001"):
        kclr.zoo.load("simclrv2-r50-1x-sk0")
    assert len(bucket.requests) == before  # refused from the cache, nothing re-downloaded


def test_offline_without_cache_says_what_to_download(zoo_env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        kclr.zoo.load("simclrv2-r50-2x-sk0")
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
        match=r"Could not download http://127\.0\.0\.1:9/simclr-checkpoints/simclrv1/pretrain/4x/",
    ):
        kclr.zoo.load("simclr-r50-4x")


def test_unknown_name_suggests():
    with pytest.raises(KeyError, match="Did you mean 'simclr-r50-1x'"):
        kclr.zoo.load("simclr-r50-1")


def test_login_page_constant_is_html():
    assert LOGIN_PAGE.lower().startswith(b"<!doctype html>")


def test_missing_hub_copy_falls_back_to_the_authors_files(
    small_catalog, bucket, zoo_env, r50_tf1_shapes, monkeypatch, capsys
):
    """A published entry whose Hub copy cannot be reached converts the authors' files; the
    Hub pin then does not apply to that local conversion."""
    lock = zoo_env / "lock.json"
    pin = {
        "repo": "kclr/simclrv2-r50-1x-sk0",
        "revision": "0" * 40,
        "sha256": {"model.weights.h5": "f" * 64},
    }
    lock.write_text(
        json.dumps({"format": "kclr.zoo.hub-lock/1", "models": {"simclrv2-r50-1x-sk0": pin}})
    )
    monkeypatch.setenv("KCLR_HUB_LOCK", str(lock))
    arrays = random_arrays(scale_shapes(r50_tf1_shapes, 0.125), seed=12)
    _serve(bucket, V2, _checkpoint_files(zoo_env, arrays, 250228))
    with HubServer() as hub:  # answers, but the repo is not there
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        encoder = kclr.zoo.load("simclrv2-r50-1x-sk0")
    assert "Hub download failed" in capsys.readouterr().err
    images = np.random.default_rng(6).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(encoder(images)), reference_forward(arrays, images), rtol=2e-4, atol=2e-4
    )


def test_a_truncated_data_file_is_named_removed_and_fetched_afresh(
    small_catalog, bucket, zoo_env, v1_arrays
):
    files = _checkpoint_files(zoo_env, v1_arrays, 225206)
    data = ".data-00000-of-00001"
    _serve(bucket, V1, {**files, data: files[data][:-1000]})  # the server's copy is cut short
    with pytest.raises(kclr.zoo.ConversionError) as info:
        kclr.zoo.load("simclr-r50-1x")
    message = str(info.value)
    assert "truncated or damaged" in message and "model.ckpt-225206" in message
    assert "run the same command again" in message and "KCLR_OFFICIAL_CHECKPOINT_URL" in message
    cache = kclr.zoo.cache_dir()
    assert list((cache / "downloads" / "simclr-r50-1x").iterdir()) == []
    assert json.loads((cache / "downloads" / "sha256.json").read_text()) == {}
    assert not (cache / "zoo" / "simclr-r50-1x").exists()
    _serve(bucket, V1, files)  # an intact copy is not refused as "changed": nothing was trusted
    images = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(kclr.zoo.load("simclr-r50-1x")(images)),
        reference_forward(v1_arrays, images),
        rtol=2e-4,
        atol=2e-4,
    )
