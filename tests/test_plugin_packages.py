"""The plugin packages in plugins/, pip-installed for real and discovered through entry points."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> pathlib.Path:
    """pip-installs both plugin packages (no dependencies, no network) into a fresh folder."""
    target = tmp_path_factory.mktemp("site")
    for plugin in ("kclr-randaugment", "kclr-kerascv"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-index",
                "--no-build-isolation",
                "--target",
                str(target),
                str(REPO / "plugins" / plugin),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return target


def _kclr(site: pathlib.Path, *args: str, code: str | None = None, **env: str):
    environ = {**os.environ, "PYTHONPATH": str(site), "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "kclr.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=300)


def test_plugins_list_shows_installed_plugins_with_origin(plugin_site):
    result = _kclr(plugin_site, "plugins", "list", "augmentations")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line}
    assert rows["rand_augment"][1:4] == ["augmentation", "kclr-randaugment", "0.1.0"]
    assert rows["auto_augment"][2] == "kclr-randaugment"
    assert rows["kerascv_random_color_jitter"][2] == "kclr-kerascv"


def test_installed_randaugment_runs_end_to_end(plugin_site):
    code = (
        "import numpy as np\n"
        "from kclr import registry\n"
        "layer = registry.augmentations.get('rand_augment', num_ops=2, magnitude=9, seed=0)\n"
        "x = np.random.default_rng(0).uniform(0, 1, (8, 32, 32, 3)).astype('float32')\n"
        "y = np.asarray(layer(x, training=True))\n"
        "print(type(layer).__module__, y.shape, float(y.min()) >= 0, float(y.max()) <= 1,"
        " bool(np.abs(y - x).mean() > 0.01))\n"
    )
    result = _kclr(plugin_site, code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "kclr_randaugment.policies (8, 32, 32, 3) True True True"
    )


@pytest.mark.skipif(importlib.util.find_spec("keras_cv") is None, reason="keras-cv not installed")
def test_installed_kerascv_bridge_runs_end_to_end(plugin_site):
    code = (
        "import numpy as np\n"
        "from kclr import registry\n"
        "layer = registry.augmentations.get('kerascv_random_crop_and_resize', target_size=(16, 16))\n"
        "x = np.random.default_rng(0).uniform(0, 1, (4, 40, 40, 3)).astype('float32')\n"
        "print(np.asarray(layer(x, training=True)).shape)\n"
    )
    result = _kclr(plugin_site, code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "(4, 16, 16, 3)"


def test_disable_switch_hides_installed_plugins(plugin_site):
    result = _kclr(plugin_site, "plugins", "list", "augmentations", KCLR_DISABLE_PLUGINS="1")
    assert result.returncode == 0, result.stderr
    assert "rand_augment" not in result.stdout
    assert "plugin discovery is off" in result.stdout
