"""The catalog (generated from the release table) and its model cards."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest
import yaml

from kclr.zoo import catalog
from kclr.zoo.catalog import cards, release
from kclr.zoo.conversion import official

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
FIRST_NAMES = [
    "simclr-r50-1x",
    "simclr-r50-2x",
    "simclr-r50-4x",
    "simclrv2-r50-1x-sk0",
    "simclrv2-r50-2x-sk0",
    "simclrv2-r50-1x-sk1",
    "simclrv2-r50-2x-sk1",
]


def test_the_whole_release_is_in_the_catalog():
    names = catalog.names()
    assert len(names) == len(set(names)) == 9 + 65  # v1: 3 widths x 3; v2: 13 archs x 5
    v2 = [n for n in names if n.startswith("simclrv2-")]
    archs = {catalog.get(n).arch_name for n in v2}
    assert archs == {f"r{d}_{w}x_sk{s}" for d in (50, 101, 152) for w in (1, 2) for s in (0, 1)} | {
        "r152_3x_sk1"
    }
    for suffix in ("", "-ft1", "-ft10", "-ft100", "-supervised"):
        assert f"simclrv2-r152-3x-sk1{suffix}" in names
    for name in ("simclr-r50-4x-ft10", "simclr-r50-1x-ft100", "simclrv2-r50-1x-sk0-ft10"):
        assert name in names
    for name in FIRST_NAMES:
        assert catalog.is_known(name)
    assert not catalog.is_known("simclrv2-r50-1x")  # one name per model: the `-sk0` is written
    with pytest.raises(catalog.UnknownModelError, match="Did you mean .*'simclrv2-r50-1x-sk0'"):
        catalog.get("simclrv2-r50-1x")


def test_reported_numbers_come_from_the_reference_or_are_null():
    expected = {
        "simclr-r50-1x": (69.1, "linear evaluation"),
        "simclr-r50-4x": (76.6, "linear evaluation"),
        "simclr-r50-2x-ft10": (71.6, "fine-tuned"),
        "simclr-r50-4x-ft100": (80.8, "fine-tuned"),
        "simclrv2-r50-1x-sk0": (71.7, "linear evaluation"),
        "simclrv2-r50-2x-sk1": (77.7, "linear evaluation"),
        "simclrv2-r50-1x-sk0-ft1": (57.9, "fine-tuned"),
        "simclrv2-r50-1x-sk1-ft10": (72.1, "fine-tuned"),
        "simclrv2-r50-2x-sk0-ft100": (79.1, "fine-tuned"),
        "simclrv2-r50-2x-sk1-supervised": (79.3, "supervised"),
        "simclrv2-r152-3x-sk1": (79.9, "linear evaluation"),
        "simclrv2-r101-1x-sk0": (None, "linear evaluation"),
        "simclrv2-r152-3x-sk1-ft1": (None, "fine-tuned"),
    }
    for name, (top1, protocol) in expected.items():
        entry = catalog.get(name)
        assert (entry.top1, entry.top1_protocol) == (top1, protocol), name
        assert (entry.top1_source is None) == (top1 is None)
    assert catalog.get("simclrv2-r101-1x-sk0").top1_text == "not reported"
    assert catalog.get("simclr-r50-4x").linear_eval_top1 == 76.6
    assert catalog.get("simclr-r50-4x-ft10").linear_eval_top1 is None
    reported = [e for e in catalog.entries() if e.top1 is not None]
    assert len(reported) == 9 + 4 * 5 + 1


def test_entries_are_consistent():
    from kclr.models.resnet import feature_dim

    for entry in catalog.entries():
        assert entry.feature_dim == feature_dim(entry.arch["depth"], entry.arch["width_multiplier"])
        assert entry.license == "apache-2.0"
        step = entry.checkpoint["sources"][0]["files"][0].split("-")[1].split(".")[0]
        assert entry.checkpoint["sources"][0]["files"] == [
            f"model.ckpt-{step}.index",
            f"model.ckpt-{step}.data-00000-of-00001",
        ]
        selector = 1 if entry.category in ("finetuned_1pct", "finetuned_10pct") else 0
        assert entry.ft_proj_selector == selector
    assert catalog.get("simclrv2-r50-1x-sk0-ft1").checkpoint["sources"][0]["files"][0] == (
        "model.ckpt-751.index"
    )
    assert catalog.get("simclr-r50-4x-ft100").checkpoint["sources"][0]["files"][0] == (
        "model.ckpt-4692.index"
    )
    json.dumps(release.expand())  # plain data


def test_urls_follow_the_bucket_layout(monkeypatch):
    monkeypatch.delenv("KCLR_OFFICIAL_CHECKPOINT_URL", raising=False)
    sources = catalog.get("simclr-r50-2x").checkpoint_sources()
    assert sources[0]["urls"] == {
        "model.ckpt-225206.index": "https://storage.googleapis.com/simclr-checkpoints/simclrv1/pretrain/2x/model.ckpt-225206.index",
        "model.ckpt-225206.data-00000-of-00001": "https://storage.googleapis.com/simclr-checkpoints/simclrv1/pretrain/2x/model.ckpt-225206.data-00000-of-00001",
    }
    assert sources[1] == {
        "urls": {
            "ResNet50_2x.zip": "https://storage.googleapis.com/simclr-gcs/checkpoints/ResNet50_2x.zip"
        },
        "archive": "zip",
    }
    assert len(catalog.get("simclr-r50-2x-ft10").checkpoint_sources()) == 1
    monkeypatch.setenv("KCLR_OFFICIAL_CHECKPOINT_URL", "http://mirror.local/")
    urls = catalog.get("simclrv2-r50-2x-sk0").checkpoint_urls()
    assert urls["model.ckpt-250228.index"] == (
        "http://mirror.local/simclr-checkpoints/simclrv2/pretrained/r50_2x_sk0/model.ckpt-250228.index"
    )
    assert catalog.get("simclrv2-r152-3x-sk1-ft10").saved_model_url() == (
        "http://mirror.local/simclr-checkpoints-tf2/simclrv2/finetuned_10pct/r152_3x_sk1/saved_model"
    )


def test_hub_entries_come_from_the_lock_file(tmp_path, monkeypatch):
    lock = tmp_path / "lock.json"
    monkeypatch.setenv("KCLR_HUB_LOCK", str(lock))
    assert catalog.get("simclr-r50-1x").hub["repo"] is None
    pin = {
        "repo": "kclr/simclr-r50-1x",
        "revision": "a" * 40,
        "sha256": {"model.weights.h5": "b" * 64},
    }
    lock.write_text(json.dumps({"format": "kclr.zoo.hub-lock/1", "models": {"simclr-r50-1x": pin}}))
    assert catalog.get("simclr-r50-1x").hub == pin
    lock.write_text(json.dumps({"models": {}}))
    with pytest.raises(ValueError, match="is not a kclr Hub lock file"):
        catalog.get("simclr-r50-1x")


def test_arch_codes():
    assert official.parse_arch("r50_2x_sk1") == {
        "depth": 50,
        "width_multiplier": 2,
        "sk_ratio": 0.0625,
    }
    assert official.parse_arch("R152_3x") == {"depth": 152, "width_multiplier": 3, "sk_ratio": 0.0}
    assert official.parse_arch("r50_0.125x")["width_multiplier"] == 0.125
    assert official.arch_code(50, 2, 0.0625) == "r50_2x_sk1"
    with pytest.raises(ValueError, match="Unknown architecture code 'resnet50'"):
        official.parse_arch("resnet50")


def test_catalog_import_is_light():
    import subprocess

    code = "import sys, kclr.zoo.catalog as c; c.names(); print('tensorflow' in sys.modules, 'huggingface_hub' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


def test_zoo_folder_has_exactly_the_current_cards():
    assert sorted(p.stem for p in (REPO_ROOT / "zoo").glob("*.md") if p.stem != "README") == sorted(
        catalog.names()
    )
    index = (REPO_ROOT / "zoo" / "README.md").read_text()
    assert "\n".join(cards.catalog_table(link=True)) in index


def test_readme_and_docs_list_the_whole_catalog():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "\n".join(cards.release_table()) in readme
    docs = (REPO_ROOT / "docs" / "zoo.md").read_text()
    assert "\n".join(cards.catalog_table()) in docs
    for name in catalog.names():
        assert f"| {name} " in docs


@pytest.mark.parametrize("name", catalog.names())
def test_model_cards_in_zoo_folder_are_current(name):
    text = (REPO_ROOT / "zoo" / f"{name}.md").read_text()
    entry = catalog.get(name)
    assert text == cards.render_catalog_card(entry), (
        "regenerate with `python -m kclr.zoo.catalog.cards zoo/`"
    )
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["library_name"] == "keras" and meta["license"] == "apache-2.0"
    assert meta["pipeline_tag"] == "image-feature-extraction"
    for needle in ["RGB images, float32 in [0, 1]", "224", "0.875", "not published yet"]:
        assert needle in text
    if entry.top1 is None:
        assert "model-index" not in meta and "not reported" in text
    else:
        assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == entry.top1
        assert f"**{entry.top1:.1f} %**" in text
