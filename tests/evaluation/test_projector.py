"""The embedding projector's files, read back."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from kclr.evaluation import projector


def _read_config(path):
    text = path.read_text()
    fields = dict(re.findall(r'(\w+): "([^"]+)"', text))
    dims = [int(v) for v in re.findall(r"single_image_dim: (\d+)", text)]
    assert text.count("{") == text.count("}") == 2
    return fields, dims


def test_projector_files_read_back(tmp_path):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(10, 6)).astype(np.float32)
    images = rng.integers(0, 256, size=(10, 20, 20, 3), dtype=np.uint8)
    names = [f"photos/cat\t{i}.png" for i in range(10)]
    info = projector.projector_files(
        tmp_path, features, images, names, np.arange(10) % 2, ["cat", "dog"], thumbnail=16
    )
    assert info["count"] == 10 and info["grid"] == 4 and info["thumbnail"] == 16
    fields, dims = _read_config(tmp_path / "projector_config.pbtxt")
    assert fields == {
        "tensor_name": "kclr_features", "tensor_path": "tensors.tsv",
        "metadata_path": "metadata.tsv", "image_path": "sprite.png",
    }  # fmt: skip
    assert dims == [16, 16]
    tensors = np.loadtxt(tmp_path / fields["tensor_path"], delimiter="\t", ndmin=2)
    np.testing.assert_allclose(tensors, features, rtol=1e-5)
    meta = (tmp_path / fields["metadata_path"]).read_text().splitlines()
    assert meta[0] == "path\tlabel"
    assert len(meta) - 1 == len(tensors)  # one row per embedding
    assert meta[1] == "photos/cat 0.png\tcat" and meta[2] == "photos/cat 1.png\tdog"
    sprite = np.asarray(Image.open(tmp_path / fields["image_path"]))
    assert sprite.shape == (4 * 16, 4 * 16, 3)  # thumbnail x grid
    first = np.asarray(Image.fromarray(images[0]).resize((16, 16), Image.BILINEAR), np.float64)
    assert np.abs(sprite[:16, :16] - first).mean() < 12  # the first image, top left
    assert not sprite[16 * 2 + 16 :, 16 * 2 :].any()  # cells past the last image are empty


def test_projector_thumbnails_shrink_to_fit_the_sprite_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(projector, "MAX_SPRITE_SIDE", 128)  # TensorBoard's is 8192
    features = np.zeros((300, 2), np.float32)
    images = np.zeros((300, 12, 12, 3), np.uint8)
    with pytest.raises(ValueError, match="do not fit TensorBoard's 128-pixel sprite"):
        projector.projector_files(tmp_path, features, images, [str(i) for i in range(300)])
    info = projector.projector_files(
        tmp_path, features[:100], images[:100], [str(i) for i in range(100)], thumbnail=1000
    )
    assert info["grid"] == 10 and info["thumbnail"] == 128 // 10 == 12
    info = projector.projector_files(
        tmp_path, features[:64], images[:64], [str(i) for i in range(64)], thumbnail=1000
    )
    assert info["thumbnail"] == 12  # no larger than the images (128 // 8 = 16 would fit)
    assert Image.open(tmp_path / "sprite.png").size == (8 * 12, 8 * 12)
    info = projector.projector_files(
        tmp_path, features[:64], images[:64, :4, :4], [str(i) for i in range(64)]
    )
    assert info["thumbnail"] == projector.MIN_THUMBNAIL == 8  # tiny images: 8 pixels
    meta = (tmp_path / "metadata.tsv").read_text().splitlines()
    assert meta[1] == "0\t"  # unlabelled: an empty label


def test_projector_files_reject_mismatched_inputs(tmp_path):
    with pytest.raises(ValueError, match="one image and one file name per embedding"):
        projector.projector_files(tmp_path, np.zeros((3, 2)), np.zeros((2, 4, 4, 3)), ["a"] * 3)
