"""`kclr zoo publish`: convert, verify, push to a local Hub, lock file, then `load` prefers the Hub."""

from __future__ import annotations

import json
import os
import pathlib
import uuid

import numpy as np
import pytest
import yaml
from bucket_server import BucketServer
from click.testing import CliRunner
from zoo_checkpoints import (
    export_saved_model,
    random_arrays,
    reference_forward,
    scale_shapes,
    write_checkpoint,
)

import kclr
from kclr.cli import main
from kclr.testing.hub_server import HubServer
from kclr.zoo import catalog

NAME = "simclrv2-r50-1x-sk0"
CKPT = "/simclr-checkpoints/simclrv2/pretrained/r50_1x_sk0/model.ckpt-250228"
SAVED = "/simclr-checkpoints-tf2/simclrv2/pretrained/r50_1x_sk0/saved_model"
NAMES = "simclr-official-variables/r50_1x_sk0_gbn1_224_names.txt"


@pytest.fixture(scope="module")
def release_files(tmp_path_factory, reference_dir):
    """The authors' files of one model (1/8 width): TF1 checkpoint and SavedModel, as bytes."""
    from zoo_checkpoints import read_names

    shapes = read_names(reference_dir / "simclr-official-variables" / "tf1_r50_1x_sk0_names.txt")
    arrays = random_arrays(scale_shapes(shapes, 0.125), seed=31)
    root = tmp_path_factory.mktemp("release")
    prefix = write_checkpoint(
        root / "tf1" / "model.ckpt-250228",
        {**arrays, "global_step": np.array(250228, np.int64)},
    )
    saved = export_saved_model(root / "saved_model", arrays, reference_dir / NAMES, image_size=None)
    files = {
        CKPT + s: pathlib.Path(prefix + s).read_bytes() for s in (".index", ".data-00000-of-00001")
    }
    for name in (
        "saved_model.pb",
        "variables/variables.index",
        "variables/variables.data-00000-of-00001",
    ):
        files[f"{SAVED}/{name}"] = (saved / name).read_bytes()
    return files, arrays


@pytest.fixture
def release(release_files, small_catalog, zoo_env, monkeypatch):
    """Those files on a loopback bucket at the authors' URL layout."""
    files, arrays = release_files
    with BucketServer() as bucket:
        bucket.files.update(files)
        monkeypatch.setenv("KCLR_OFFICIAL_CHECKPOINT_URL", bucket.url)
        yield bucket, arrays


def test_publish_end_to_end_then_load_prefers_the_hub(release, zoo_env, monkeypatch):
    bucket, arrays = release
    lock = zoo_env / "hub_lock.json"
    monkeypatch.setenv("KCLR_HUB_LOCK", str(lock))
    with HubServer() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        result = CliRunner().invoke(
            main,
            ["zoo", "publish", "simclrv2-r50-1x-sk0", "--org", "kclr-test", "--lock", str(lock)],
        )
        assert result.exit_code == 0, result.output
        pinned = json.loads(lock.read_text())
        assert pinned["format"] == "kclr.zoo.hub-lock/1"
        entry = pinned["models"][NAME]
        repo = f"kclr-test/{NAME}"
        assert entry["repo"] == repo and len(entry["revision"]) == 40
        sha = entry["sha256"]["model.weights.h5"]
        assert f"{NAME}: {repo}@{entry['revision']} sha256 {sha}" in result.output
        files = hub.repo_files(repo)
        assert sorted(files) == ["README.md", "config.json", "metadata.json", "model.weights.h5"]
        card = files["README.md"].decode()
        front = yaml.safe_load(card.split("---\n")[1])
        assert front["model-index"][0]["results"][0]["metrics"][0]["value"] == 71.7
        assert f"{bucket.url}{CKPT}.index" in card, card
        assert sha in card
        meta = json.loads(files["metadata.json"])
        assert meta["converted_from"]["verification"]["passed"] is True
        assert meta["source"]["files"]["model.ckpt-250228.index"]["sha256"] in card
        assert "features max abs" in card and "within tolerance" in card

        # The catalog now points at the Hub; a fresh cache loads from there, not the bucket.
        assert catalog.get(NAME).hub == entry
        kclr.zoo.cache.clear()
        bucket.requests.clear()
        encoder = kclr.zoo.load("simclrv2-r50-1x-sk0")
        assert bucket.requests == []
        assert any(path.startswith(f"/{repo}/resolve/") for _, path in hub.requests)
    images = np.random.default_rng(3).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(encoder(images)), reference_forward(arrays, images), rtol=2e-4, atol=2e-4
    )


def test_publish_refuses_without_the_reference(release, zoo_env, monkeypatch):
    bucket, _ = release
    bucket.faults[f"{SAVED}/saved_model.pb"] = ["403"]
    with HubServer() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        result = CliRunner().invoke(
            main,
            ["zoo", "publish", NAME, "--org", "o", "--lock", str(zoo_env / "lock.json")],
        )
        assert result.exit_code == 1
        assert f"access denied at {bucket.url}{SAVED}/saved_model.pb" in result.output
        assert not (zoo_env / "lock.json").exists() and not [
            r for r in hub.requests if r[0] == "POST"
        ]
    result = CliRunner().invoke(main, ["zoo", "publish", "simclr-r50-9x", "--org", "o"])
    assert result.exit_code == 1 and "Unknown model 'simclr-r50-9x'" in result.output


@pytest.mark.hub
@pytest.mark.skipif(not os.environ.get("HF_TOKEN"), reason="needs HF_TOKEN (real Hub)")
def test_publish_to_the_real_hub(release, zoo_env, monkeypatch):
    from huggingface_hub import HfApi

    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    api = HfApi()
    org = api.whoami()["name"]
    lock = zoo_env / "lock.json"
    try:
        written = kclr.zoo.publish.publish([NAME], org, lock=lock, private=True)
        assert json.loads(lock.read_text())["models"][NAME] == written[NAME]
    finally:
        api.delete_repo(f"{org}/{NAME}", missing_ok=True)
    assert uuid  # the name is fixed by the catalog; the repo is removed afterwards
