"""`kclr eval`, `kclr extract`, `kclr finetune` on a tiny exported model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from kclr.cli import main


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny encoder + head exported in the zoo format (no training needed)."""
    import keras

    from kclr import zoo
    from kclr.run import config
    from kclr.run import fit as runs

    cfg = config.resolve("tiny")
    keras.utils.set_random_seed(0)
    encoder, head = runs.build_models(cfg)
    encoder(np.zeros((1, 16, 16, 3), np.float32))
    head(encoder.output)
    path = tmp_path_factory.mktemp("model") / "export"
    zoo.save(encoder, path, head=head, preprocessing={"image_size": 16})
    return path, encoder


def _small_demo():
    from kclr.data import demo

    x, y = demo.load("train")
    xt, yt = demo.load("test")
    return {"train": (x[:200], y[:200]), "test": (xt[:100], yt[:100])}


def test_extract_features_labels_and_filenames(exported, tmp_path):
    from kclr.evaluation import extract_features

    path, encoder = exported
    out = tmp_path / "features.npy"
    result = CliRunner().invoke(
        main,
        [
            "extract",
            str(path),
            "--data",
            "demo",
            "--out",
            str(out),
            "--batch-size",
            "128",
            "--image-size",
            "32",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    features = np.load(out)
    labels = np.load(tmp_path / "features.labels.npy")
    names = (tmp_path / "features.filenames.txt").read_text().split()
    assert features.shape == (1000, encoder.output.shape[-1]) and len(labels) == len(names) == 1000
    from kclr.data import demo

    np.testing.assert_array_equal(labels, demo.load("test")[1])
    assert names[:2] == ["index:0", "index:1"]
    # Same numbers as running the encoder directly on the first test images.
    images = demo.load("test")[0][:4].astype(np.float32) / 255.0
    np.testing.assert_allclose(features[:4], encoder(images, training=False), atol=1e-4)
    direct = extract_features(encoder, (demo.load("test")[0][:4], labels[:4]), batch_size=3)
    np.testing.assert_allclose(direct["features"], features[:4], atol=1e-4)


def test_eval_knn_and_linear_write_json_next_to_the_model(exported):
    from kclr.evaluation import evaluate_model

    path, _ = exported
    data = _small_demo()
    knn = evaluate_model(str(path), data, "knn", k=10)
    assert 0 <= knn["top1"] <= 100 and knn["num_train"] == 200 and knn["num_test"] == 100
    linear = evaluate_model(
        str(path), data, {"name": "linear", "config": {"epochs": 2, "batch_size": 64}}
    )
    assert 0 <= linear["top1"] <= linear["top5"] <= 100
    saved = json.loads((path.parent / "export.results.json").read_text())
    assert saved["knn"]["top1"] == knn["top1"] and saved["linear"]["top1"] == linear["top1"]


def test_eval_cli_prints_a_table(exported):
    path, _ = exported
    result = CliRunner().invoke(main, ["eval", "knn", str(path), "--data", "demo", "--k", "20"])
    assert result.exit_code == 0, result.output
    assert "TOP1" in result.output and "knn" in result.output
    assert "results.json" in result.output


def test_eval_unlabelled_or_missing_data_is_a_clear_error(exported, tmp_path):
    path, _ = exported
    result = CliRunner().invoke(main, ["eval", "knn", str(path), "--data", str(tmp_path / "nope")])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_finetune_with_a_label_fraction(exported):
    from kclr.evaluation import finetune
    from kclr.zoo.door import open_model

    path, _ = exported
    opened = open_model(str(path))
    encoder, head = opened.encoder, opened.projection_head
    assert head is not None and opened.output == "features" and opened.image_size == 16
    data = _small_demo()
    result = finetune(
        encoder, data, label_fraction=0.1, projection_head=head, ft_proj_selector=1,
        image_size=16, epochs=2, batch_size=10, verbose=0,
    )  # fmt: skip
    from kclr.data import label_fraction_indices

    expected = len(label_fraction_indices(data["train"][1], 0.1))
    counts = np.bincount(data["train"][1], minlength=10)
    assert expected == sum(max(1, round(0.1 * c)) for c in counts)  # class-balanced 10%
    assert result["num_labelled"] == expected
    assert result["label_fraction"] == 0.1
    assert 0 <= result["top1"] <= result["top5"] <= 100
    model = result["model"]
    # The classifier sits on the first projection layer (SimCLRv2) and trains the encoder too.
    assert model.output.shape[-1] == 10
    assert any("head_supervised" in v.path for v in model.trainable_variables)
    assert len(model.trainable_variables) > 2


def test_finetune_cli_reports_and_writes_results(exported):
    path, _ = exported
    result = CliRunner().invoke(
        main,
        ["finetune", str(path), "--data", "demo", "--label-fraction", "0.01",
         "--epochs", "1", "--batch-size", "30"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "finetune_0.01" in result.output and "TOP1" in result.output
    saved = json.loads((path.parent / "export.results.json").read_text())
    assert saved["finetune_0.01"]["num_labelled"] == 60  # 1% of 600 per class x 10 classes
    assert saved["finetune_0.01"]["ft_proj_selector"] == 1  # the model has a projection head


def test_eval_linear_and_finetune_read_the_protocol_specs_of_the_run(exported, tmp_path):
    """`linear_eval` / `finetune` saved with a run are what the commands run; options win."""
    import shutil

    from kclr.run import config

    path, _ = exported
    folder = tmp_path / "export"
    shutil.copytree(path, folder)
    cfg = config.resolve("tiny", overrides=[
        "linear_eval.config.epochs=3", "linear_eval.config.learning_rate=0.2",
        "finetune.config.epochs=2", "finetune.config.label_fraction=0.01",
        "finetune.config.ft_proj_selector=0", "finetune.config.batch_size=30",
    ])  # fmt: skip
    meta = json.loads((folder / "metadata.json").read_text())
    meta["config"] = config.to_dict(cfg)
    (folder / "metadata.json").write_text(json.dumps(meta))
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "linear", str(folder), "--data", "demo"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "export.results.json").read_text())["linear"]
    assert (saved["epochs"], saved["learning_rate"], saved["batch_size"]) == (3, 0.2, 64)
    result = runner.invoke(
        main, ["eval", "linear", str(folder), "--data", "demo", "--epochs", "1",
               "--set", "linear_eval.config.batch_size=128"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "export.results.json").read_text())["linear"]
    assert (saved["epochs"], saved["batch_size"]) == (1, 128)  # option and --set win
    result = runner.invoke(main, ["finetune", str(folder), "--data", "demo"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "export.results.json").read_text())["finetune_0.01"]
    assert (saved["epochs"], saved["ft_proj_selector"], saved["batch_size"]) == (2, 0, 30)
    bad = runner.invoke(main, ["eval", "linear", str(folder), "--data", "demo",
                               "--set", "linear_eval.config.epoch=2"])  # fmt: skip
    assert bad.exit_code != 0 and "Did you mean 'linear_eval.config.epochs'" in bad.output


@pytest.mark.parametrize(("selector", "features"), [(0, 64), (1, 6)])
def test_ft_proj_selector_chooses_what_the_classifier_reads(selector, features):
    # `finetune.config.ft_proj_selector` acts in the fine-tuning protocol: 0 puts the new
    # classifier on the encoder output (ResNet-18 at width 1/8: 64 features), 1 on the first
    # projection layer (hidden_dim 6).
    from kclr import registry
    from kclr.evaluation.fine_tuning import build_classifier

    encoder = registry.encoders.get(
        "resnet", depth=18, width_multiplier=0.125, input_shape=(8, 8, 3)
    )
    head = registry.heads.get("projection_head", version="v2", output_dim=4, hidden_dim=6)
    head.build(encoder.output.shape)
    model = build_classifier(encoder, 3, projection_head=head, ft_proj_selector=selector)
    assert model.get_layer("head_supervised").kernel.shape == (features, 3)
    assert model(np.zeros((2, 8, 8, 3), np.float32)).shape == (2, 3)
