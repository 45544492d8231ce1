"""The catalog (packaged data) and its model cards."""

from __future__ import annotations

import pathlib
import sys

import pytest
import yaml

from kclr.zoo import cards, catalog

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_catalog_has_the_published_models():
    names = catalog.names()
    for name in [
        "simclr-r50-1x",
        "simclr-r50-2x",
        "simclr-r50-4x",
        "simclrv2-r50-1x",
        "simclrv2-r50-2x",
    ]:
        assert name in names
    assert catalog.get("simclr-r50-4x").arch == {
        "depth": 50,
        "width_multiplier": 4,
        "sk_ratio": 0.0,
    }
    assert catalog.get("simclr-r50-4x").linear_eval_top1 == 76.6
    assert catalog.get("simclrv2-r50-1x").linear_eval_top1 == 71.7
    assert catalog.get("simclrv2-r50-1x-sk1").arch_name == "r50_1x_sk1"
    for entry in catalog.entries():
        from kclr.models.resnet import feature_dim

        assert entry.feature_dim == feature_dim(entry.arch["depth"], entry.arch["width_multiplier"])
        assert entry.license == "apache-2.0"
        assert set(entry.checkpoint["sha256"]) <= set(entry.checkpoint["files"])


def test_urls_follow_the_bucket_layout(monkeypatch):
    monkeypatch.delenv("KCLR_OFFICIAL_CHECKPOINT_URL", raising=False)
    assert catalog.get("simclr-r50-2x").checkpoint_urls() == {
        "ResNet50_2x.zip": "https://storage.googleapis.com/simclr-gcs/checkpoints/ResNet50_2x.zip"
    }
    monkeypatch.setenv("KCLR_OFFICIAL_CHECKPOINT_URL", "http://mirror.local/")
    urls = catalog.get("simclrv2-r50-2x").checkpoint_urls()
    assert urls["model.ckpt-250228.index"] == (
        "http://mirror.local/simclr-checkpoints/simclrv2/pretrained/r50_2x_sk0/model.ckpt-250228.index"
    )


def test_arch_codes():
    assert catalog.parse_arch("r50_2x_sk1") == {
        "depth": 50,
        "width_multiplier": 2,
        "sk_ratio": 0.0625,
    }
    assert catalog.parse_arch("R152_3x") == {"depth": 152, "width_multiplier": 3, "sk_ratio": 0.0}
    assert catalog.parse_arch("r50_0.125x")["width_multiplier"] == 0.125
    assert catalog.arch_code(50, 2, 0.0625) == "r50_2x_sk1"
    with pytest.raises(ValueError, match="Unknown architecture code 'resnet50'"):
        catalog.parse_arch("resnet50")


def test_catalog_import_is_light():
    import subprocess

    code = "import sys, kclr.zoo.catalog as c; c.names(); print('tensorflow' in sys.modules, 'huggingface_hub' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize("name", catalog.names())
def test_model_cards_in_zoo_folder_are_current(name):
    text = (REPO_ROOT / "zoo" / f"{name}.md").read_text()
    entry = catalog.get(name)
    assert text == cards.render_catalog_card(entry), (
        "regenerate with `python -m kclr.zoo.cards zoo/`"
    )
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["library_name"] == "keras" and meta["license"] == "apache-2.0"
    assert meta["pipeline_tag"] == "image-feature-extraction"
    for needle in [
        "RGB images, float32 in [0, 1]",
        "224",
        "0.875",
        f"{entry.linear_eval_top1:.1f}",
        "not published yet",
    ]:
        assert needle in text
