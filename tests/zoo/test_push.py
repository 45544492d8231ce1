"""`kclr zoo push`: the upload folder is complete and loads back; real upload only with HF_TOKEN."""

from __future__ import annotations

import json
import os
import uuid

import numpy as np
import pytest
import yaml

import kclr
from kclr.models import ProjectionHead, ResNet
from kclr.zoo.publish import upload as hub


@pytest.fixture
def run_dir(tmp_path):
    encoder = ResNet(18, 0.25, cifar_stem=True, input_shape=(None, None, 3))
    run = tmp_path / "run"
    kclr.zoo.save(
        encoder,
        run / "export",
        head=ProjectionHead("v2", output_dim=8),
        metadata={"datasets": ["cifar10"], "metrics": {"knn_top1": 0.61}, "license": "mit"},
    )
    (run / "train.log").write_text("epoch 1\n")
    return run, encoder


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_upload_folder_is_complete_and_loads_back(run_dir, tmp_path):
    run, encoder = run_dir
    folder = hub.prepare_upload(run, tmp_path / "upload", repo="someone/tiny-simclr")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "metadata.json",
        "model.weights.h5",
    ]
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["kclr_version"] == kclr.__version__ and meta["repo"] == "someone/tiny-simclr"
    card = (folder / "README.md").read_text()
    hub_meta = front_matter(card)
    assert hub_meta["library_name"] == "keras"
    assert hub_meta["pipeline_tag"] == "image-feature-extraction"
    assert hub_meta["license"] == "mit"
    assert hub_meta["datasets"] == ["cifar10"]
    assert hub_meta["metrics"] == ["knn_top1"]
    assert {"kclr", "contrastive-learning"} <= set(hub_meta["tags"])
    assert 'kclr.zoo.load("hf://someone/tiny-simclr")' in card
    images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(kclr.zoo.load(folder)(images)), np.asarray(encoder(images)), atol=1e-6
    )


def test_push_refuses_what_is_not_an_export(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a kclr zoo folder nor a run directory"):
        hub.prepare_upload(tmp_path, tmp_path / "upload")


def test_catalog_card_used_for_converted_catalog_models(tmp_path):
    encoder = ResNet(50, 0.125, input_shape=(None, None, 3))
    kclr.zoo.save(encoder, tmp_path / "m", metadata={"catalog_name": "simclr-r50-1x"})
    folder = hub.prepare_upload(tmp_path / "m", tmp_path / "upload")
    card = (folder / "README.md").read_text()
    weights_sha = json.loads((folder / "metadata.json").read_text())["sha256"]["model.weights.h5"]
    assert weights_sha in card and "69.1" in card
    assert front_matter(card)["model-index"][0]["results"][0]["metrics"][0]["value"] == 69.1


@pytest.mark.hub
@pytest.mark.skipif(not os.environ.get("HF_TOKEN"), reason="needs HF_TOKEN (real Hub)")
def test_real_hub_round_trip(run_dir, monkeypatch):
    from huggingface_hub import HfApi

    run, encoder = run_dir
    api = HfApi()
    repo = f"{api.whoami()['name']}/kclr-test-{uuid.uuid4().hex[:8]}"
    try:
        result = hub.push(run, repo, private=True)
        model = kclr.zoo.load(f"hf://{repo}@{result['revision']}")
        images = np.random.default_rng(0).uniform(size=(2, 16, 16, 3)).astype("float32")
        np.testing.assert_allclose(
            np.asarray(model(images)), np.asarray(encoder(images)), atol=1e-6
        )
    finally:
        api.delete_repo(repo)
