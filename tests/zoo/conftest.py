"""Fixtures for zoo tests."""

from __future__ import annotations

import dataclasses
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # the zoo_checkpoints helper module

from zoo_checkpoints import read_names  # noqa: E402


@pytest.fixture(scope="session")
def r50_tf1_shapes(reference_dir) -> dict[str, tuple[int, ...]]:
    return read_names(reference_dir / "simclr-official-variables" / "tf1_r50_1x_sk0_names.txt")


@pytest.fixture
def zoo_env(tmp_path, monkeypatch):
    """Isolated kclr and Hub caches, offline flags cleared."""
    monkeypatch.setenv("KCLR_CACHE", str(tmp_path / "kclr-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("KCLR_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return tmp_path


@pytest.fixture
def small_catalog(monkeypatch):
    """The packaged catalog with every architecture shrunk to 1/8 width (URLs unchanged)."""
    from kclr.zoo import catalog

    real = catalog._load

    def small():  # re-read each time, so a rewritten Hub lock file is seen
        return {
            name: dataclasses.replace(entry, arch={**entry.arch, "width_multiplier": 0.125})
            for name, entry in real().items()
        }

    monkeypatch.setattr(catalog, "_load", small)
    return small
