"""`kclr.export` / `kclr export`: every format round trips in a Python that cannot import kclr."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

IMAGE_SIZE = 32
FLOAT32_FORMATS = ("keras", "saved_model", "tflite", "onnx")


def _tiny_resnet_folder(path):
    import kclr.zoo
    from kclr.models import ProjectionHead, resnet18

    encoder = resnet18(width_multiplier=0.125, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    head = ProjectionHead(version="v2", output_dim=16)
    head(encoder.output)
    return kclr.zoo.save(encoder, path, head=head, preprocessing={"image_size": IMAGE_SIZE})


@pytest.fixture(scope="module")
def resnet_folder(tmp_path_factory):
    return _tiny_resnet_folder(tmp_path_factory.mktemp("zoo") / "tiny-r18")


@pytest.fixture(scope="module")
def exported(resnet_folder, tmp_path_factory):
    """Every format of the tiny ResNet, written and checked once: name -> report."""
    pytest.importorskip("tf2onnx", reason="--format onnx needs tf2onnx (kclr[onnx])")
    pytest.importorskip("onnxruntime", reason="the onnx check runs onnxruntime (kclr[onnx])")
    from kclr.export import export

    out = tmp_path_factory.mktemp("exports")
    reports = {fmt: export(resnet_folder, fmt, out / f"tiny-{fmt}") for fmt in FLOAT32_FORMATS}
    reports["tflite16"] = export(resnet_folder, "tflite", out / "tiny-fp16", float16=True)
    return reports


@pytest.mark.parametrize("name", [*FLOAT32_FORMATS, "tflite16"])
def test_every_format_round_trips_without_kclr_within_the_bound(exported, name):
    from kclr.export import FLOAT16_BOUND, FLOAT32_BOUND

    report = exported[name]
    assert report["kclr_importable_in_check"] is False
    assert report["max_abs_diff"] <= report["bound"]
    assert report["bound"] >= (FLOAT16_BOUND if name == "tflite16" else FLOAT32_BOUND)
    assert report["size_bytes"] > 0 and report["load_s"] >= 0
    assert report["input_shape"] == [None, IMAGE_SIZE, IMAGE_SIZE, 3]
    assert report["output_shape"] == [None, 64] and report["output"] == "features"


def test_float32_formats_match_tightly(exported):
    for name in FLOAT32_FORMATS:
        assert exported[name]["max_abs_diff"] <= 1e-5, name


def test_keras_file_names_no_kclr_class(exported):
    with zipfile.ZipFile(exported["keras"]["path"]) as archive:
        config = archive.read("config.json").decode()
    assert "kclr" not in config.lower()
    classes = {
        entry["class_name"] for entry in json.loads(config)["config"]["layers"]
    }  # the top-level layers: the input and the rebuilt encoder
    assert classes <= {"InputLayer", "Functional"}
    assert '"BatchNormalization"' in config


def test_saved_model_signature(exported):
    report = exported["saved_model"]
    assert {"serve", "serving_default"} <= set(report["signatures"])
    assert report["signature_inputs"] == {"images": [None, IMAGE_SIZE, IMAGE_SIZE, 3]}
    assert list(report["signature_outputs"].values()) == [[None, 64]]


def test_tflite_float16_is_smaller_than_float32(exported):
    assert exported["tflite16"]["weights"] == "float16"
    assert exported["tflite16"]["size_bytes"] < 0.7 * exported["tflite"]["size_bytes"]


def test_the_check_process_cannot_import_kclr():
    from kclr.export.check import CHILD_PRELUDE, child_environment

    probe = CHILD_PRELUDE + "import kclr\n"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=child_environment(), capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "ModuleNotFoundError: import of kclr halted" in result.stderr
    # Without the prelude the same interpreter imports kclr: the block is what stops it.
    plain = subprocess.run(
        [sys.executable, "-c", "import kclr"], env=child_environment(), capture_output=True
    )
    assert plain.returncode == 0


def test_cli_prints_the_report(resnet_folder, tmp_path):
    pytest.importorskip("tf2onnx", reason="--format onnx needs tf2onnx (kclr[onnx])")
    pytest.importorskip("onnxruntime", reason="the onnx check runs onnxruntime (kclr[onnx])")
    from kclr.cli import main

    out = tmp_path / "cli.onnx"
    result = CliRunner().invoke(
        main, ["export", str(resnet_folder), "--format", "onnx", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "MAX_DIFF" in result.output and "onnx" in result.output and out.is_file()
    result = CliRunner().invoke(
        main,
        ["export", str(resnet_folder), "--format", "keras", "--out", str(tmp_path / "m"),
         "--no-check", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["path"].endswith("m.keras") and "max_abs_diff" not in report


# ----------------------------------------------------------------------------- errors
def _invoke(*args):
    from kclr.cli import main

    return CliRunner().invoke(main, ["export", *map(str, args)])


def test_unknown_format_is_an_error(resnet_folder, tmp_path):
    from kclr.export import export

    with pytest.raises(ValueError, match="Unknown export format 'pt'"):
        export(resnet_folder, "pt", tmp_path / "x")
    result = _invoke(resnet_folder, "--format", "pt", "--out", tmp_path / "x")
    assert result.exit_code != 0 and "'pt' is not one of" in result.output


def test_keras_hub_format_refuses_a_resnet(resnet_folder, tmp_path):
    result = _invoke(resnet_folder, "--format", "keras-hub", "--out", tmp_path / "hub")
    assert result.exit_code != 0
    assert "KerasHubEncoder" in result.output and "ResNet" in result.output
    assert "--format keras, saved_model, tflite or onnx" in result.output
    assert not (tmp_path / "hub").exists()


def test_existing_out_is_not_overwritten(resnet_folder, tmp_path):
    out = tmp_path / "taken.keras"
    out.write_bytes(b"precious")
    result = _invoke(resnet_folder, "--format", "keras", "--out", out)
    assert result.exit_code != 0 and "--overwrite" in result.output
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.keras"]


def test_overwrite_replaces_only_after_the_export(resnet_folder, tmp_path):
    out = tmp_path / "taken.keras"
    out.write_bytes(b"old")
    result = _invoke(resnet_folder, "--format", "keras", "--out", out, "--overwrite", "--no-check")
    assert result.exit_code == 0, result.output
    assert zipfile.is_zipfile(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.keras"]


def test_missing_model_path_is_an_error(tmp_path):
    result = _invoke(tmp_path / "nope", "--format", "keras", "--out", tmp_path / "x")
    assert result.exit_code != 0 and "does not exist" in result.output
    result = _invoke(tmp_path / "nope.keras", "--format", "keras", "--out", tmp_path / "x")
    assert result.exit_code != 0 and "fine-tuned classifier" in result.output


def test_onnx_without_tf2onnx_names_the_extra(resnet_folder, tmp_path, monkeypatch):
    from kclr.export import export

    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    with pytest.raises(ImportError, match=r'pip install "kclr\[onnx\]"'):
        export(resnet_folder, "onnx", tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_float16_applies_to_tflite_only(resnet_folder, tmp_path):
    result = _invoke(resnet_folder, "--format", "onnx", "--float16", "--out", tmp_path / "m")
    assert result.exit_code != 0 and "tflite only" in result.output


def test_sk_resnet_refuses_the_keras_format():
    from kclr.export import NotPlainError, plain_model
    from kclr.models import resnet50

    encoder = resnet50(width_multiplier=0.0625, sk_ratio=0.0625, input_shape=(32, 32, 3))
    with pytest.raises(NotPlainError, match="saved_model, tflite or onnx"):
        plain_model(encoder, 32)


# ----------------------------------------------------------------------------- classifier
@pytest.mark.slow
def test_fine_tuned_classifier_exports_its_logits(resnet_folder, tmp_path):
    """A classifier as `kclr finetune --out X` writes it (projection layer 1 + Dense)."""
    from kclr.evaluation.fine_tuning import build_classifier
    from kclr.export import export
    from kclr.zoo.door import open_model

    opened = open_model(str(resnet_folder))
    encoder, head = opened.encoder, opened.projection_head
    classifier = build_classifier(encoder, 3, projection_head=head, ft_proj_selector=1)
    dense = classifier.get_layer("head_supervised")
    kernel, bias = dense.get_weights()
    rng = np.random.default_rng(1)
    dense.set_weights([rng.normal(size=kernel.shape).astype("float32"), bias + 0.5])
    classifier.save(tmp_path / "ft.keras")
    for fmt in ("keras", "saved_model"):
        report = export(tmp_path / "ft.keras", fmt, tmp_path / f"ft-{fmt}")
        assert report["output"] == "logits" and report["output_shape"] == [None, 3]
        assert report["max_abs_diff"] <= report["bound"], fmt
    with zipfile.ZipFile(tmp_path / "ft-keras.keras") as archive:
        assert "kclr" not in archive.read("config.json").decode().lower()


# ----------------------------------------------------------------------------- keras-hub
@pytest.mark.slow
def test_keras_hub_preset_loads_backbone_and_image_classifier(tmp_path):
    pytest.importorskip("keras_hub", reason="--format keras-hub needs keras-hub")
    import kclr.zoo
    from kclr.export import export
    from kclr.models import KerasHubEncoder

    vit = {"patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 32, "mlp_dim": 64}
    encoder = KerasHubEncoder(
        "ViTBackbone", vit, image_size=IMAGE_SIZE, input_scale=2.0, input_offset=-1.0
    )
    folder = kclr.zoo.save(encoder, tmp_path / "vit", preprocessing={"image_size": IMAGE_SIZE})
    report = export(folder, "keras-hub", tmp_path / "vit-preset")
    assert report["max_abs_diff"] <= report["bound"] <= 1e-4
    assert report["backbone_class"] == "ViTBackbone"
    assert report["image_classifier_class"] == "ViTImageClassifier"
    assert report["image_classifier_output_shape"] == [4, 3]
    assert report["image_converter"]["scale"] == pytest.approx(2.0 / 255.0)
    files = {p.name for p in (tmp_path / "vit-preset").iterdir()}
    assert {"config.json", "model.weights.h5", "image_converter.json"} <= files
    assert "preprocessor.json" in files
    keras_report = export(folder, "keras", tmp_path / "vit.keras")
    assert keras_report["max_abs_diff"] <= keras_report["bound"]


def test_a_relative_out_is_made_absolute_for_the_check_in_another_directory(tmp_path, monkeypatch):
    from kclr.export.api import destination

    monkeypatch.chdir(tmp_path)
    assert destination("vit_preset/", None) == tmp_path / "vit_preset"
    assert destination("model", ".keras") == tmp_path / "model.keras"
