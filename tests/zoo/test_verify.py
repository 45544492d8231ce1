"""`kclr zoo verify` and conversion of a SavedModel that returns the released dict signature."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from zoo_checkpoints import (
    export_saved_model,
    random_arrays,
    reference_forward,
    reference_heads,
    scale_shapes,
    write_checkpoint,
)

from kclr.cli import main
from kclr.zoo.conversion import compare as verifying
from kclr.zoo.conversion.converter import ConversionError, convert

ARCH = {"depth": 50, "width_multiplier": 0.125}
NAMES = "simclr-official-variables/r50_1x_sk0_gbn1_224_names.txt"


@pytest.fixture(scope="module")
def official(tmp_path_factory, reference_dir):
    """The authors' layout at 1/8 width, exported as the released SavedModels are."""
    from zoo_checkpoints import read_names

    shapes = scale_shapes(
        read_names(reference_dir / "simclr-official-variables" / "tf1_r50_1x_sk0_names.txt"),
        0.125,
    )
    arrays = random_arrays(shapes, seed=21)
    root = tmp_path_factory.mktemp("official")
    export_saved_model(root / "saved_model", arrays, reference_dir / NAMES, image_size=32)
    return root, arrays


def test_the_exported_reference_returns_the_released_dict(official):
    root, arrays = official
    images = verifying.generated_images(2, 32)
    outputs = verifying.run_official(root / "saved_model", images)
    assert {"final_avg_pool", "logits_sup", "proj_head_output"} <= set(outputs)
    np.testing.assert_allclose(
        outputs["final_avg_pool"], reference_forward(arrays, images), rtol=1e-5, atol=1e-6
    )


@pytest.fixture(scope="module")
def converted(official, tmp_path_factory):
    """The SavedModel converted (and so verified) once for the tests below."""
    root, _ = official
    out = tmp_path_factory.mktemp("converted") / "out"
    images = verifying.generated_images(3, 32, seed=1)
    return out, convert(root / "saved_model", ARCH, out=out, verify_images=images), images


def test_converting_a_saved_model_verifies_it(official, converted, tmp_path):
    root, arrays = official
    out, result, images = converted
    assert result.report["key_form"] == "tf2-indexed"
    verification = result.report["verification"]
    assert verification["passed"] and verification["images"] == 3
    assert set(verification["outputs"]) == {"features", "logits"}
    assert verification["outputs"]["features"]["max_abs"] < 1e-5
    assert verification["outputs"]["logits"]["max_rel"] < 1e-4
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["converted_from"]["verification"]["passed"] is True
    # A wrong setting is caught by the authors' own forward pass: nothing is written.
    with pytest.raises(ConversionError, match=r"differs from the authors' SavedModel: .*ABOVE"):
        convert(
            root / "saved_model",
            ARCH,
            out=tmp_path / "wrong",
            ft_proj_selector=1,
            verify_images=images,
        )
    assert not (tmp_path / "wrong").exists()


def test_cli_verify_reports_differences_and_exit_status(official, converted, tmp_path):
    root, arrays = official
    good = converted[0]
    result = CliRunner().invoke(
        main,
        [
            "zoo",
            "verify",
            str(good),
            "--reference",
            str(root / "saved_model"),
            "--image-size",
            "32",
            "--count",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("features: max abs diff ") and "max rel diff" in lines[0]
    assert lines[1].startswith("logits: max abs diff ")
    assert float(lines[0].split("max abs diff ")[1].split(",")[0]) < 1e-5
    assert lines[-1] == "PASS: 2 images of 32 px, tolerance 0.0001"

    # Another model (different weights in one layer) fails with a non-zero exit.
    changed = dict(arrays)
    changed["base_model/batch_normalization_52/gamma"] = changed[
        "base_model/batch_normalization_52/gamma"
    ] * np.float32(1.01)
    convert(write_checkpoint(tmp_path / "model.ckpt-2", changed), ARCH, out=tmp_path / "bad")
    result = CliRunner().invoke(
        main,
        [
            "zoo",
            "verify",
            str(tmp_path / "bad"),
            "--reference",
            str(root / "saved_model"),
            "--image-size",
            "32",
        ],
    )
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("FAIL: 4 images of 32 px")


def test_compare_definitions():
    official = {"final_avg_pool": np.array([[1.0, -4.0]]), "logits_sup": np.array([[2.0]])}
    ours = {"features": np.array([[1.0, -3.9996]]), "logits": np.array([[2.0]])}
    result = verifying.compare(ours, official)
    assert result["outputs"]["features"]["max_abs"] == pytest.approx(4e-4)
    assert result["outputs"]["features"]["max_rel"] == pytest.approx(1e-4)
    assert result["passed"]  # relative difference at the tolerance
    result = verifying.compare({"features": np.array([[1.0, -3.999]])}, official)
    assert not result["passed"] and set(result["outputs"]) == {"features"}
    with pytest.raises(ValueError, match="lack 'final_avg_pool'"):
        verifying.compare(ours, {"logits_sup": np.zeros((1, 1))})


def test_verify_images_from_a_folder(tmp_path):
    import tensorflow as tf

    image = np.zeros((40, 50, 3), np.uint8)
    image[..., 0] = 255
    tf.io.write_file(str(tmp_path / "a.png"), tf.io.encode_png(image))
    batch = verifying.folder_images(tmp_path, image_size=16)
    assert batch.shape == (1, 16, 16, 3)
    np.testing.assert_allclose(batch[0, ..., 0], 1.0, atol=1e-6)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No images"):
        verifying.folder_images(tmp_path / "empty", image_size=16)


def test_reference_heads_follow_the_authors(official):
    _, arrays = official
    features = np.random.default_rng(0).uniform(size=(2, 256)).astype("float32")
    projection, logits = reference_heads(arrays, features)
    assert projection.shape == (2, 128) and logits.shape == (2, 1000)


def test_reference_must_be_a_tf2_saved_model(tmp_path):
    images = verifying.generated_images(1, 8)
    with pytest.raises(FileNotFoundError, match="not a SavedModel folder"):
        verifying.run_official(tmp_path, images)
    (tmp_path / "tfhub_module.pb").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="is a TF1 Hub module"):
        verifying.run_official(tmp_path, images)
