"""Evaluation protocols on saved models: what `kclr eval`, `kclr finetune` and `kclr extract` run.

A model is anything `kclr.zoo.load` accepts: a zoo name, `hf://owner/repo[@rev]`
or a local folder written by `kclr.zoo.save` (e.g. `RUN_DIR/export`). Results
are written as JSON next to a local model (`<folder>.results.json`, one entry
per protocol) and returned as dicts.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from kclr.evaluation.features import extract_features
from kclr.evaluation.knn import knn_evaluate
from kclr.evaluation.linear import linear_evaluation


def load_model(spec: str, include_head: bool = False):
    """Loads `spec` with `kclr.zoo.load`; with `include_head`, returns `(encoder, head)`.

    The head is the `kclr.models.ProjectionHead` saved with the model (None if absent).
    """
    from kclr import zoo

    if not include_head:
        return zoo.load(spec), None
    import keras

    from kclr.models import ProjectionHead

    plain = zoo.load(spec)
    try:
        bundle = zoo.load(spec, include_head=True)
    except ValueError:  # saved without a projection head
        return plain, None
    head = next(layer for layer in bundle.layers if isinstance(layer, ProjectionHead))
    encoder = keras.Model(bundle.inputs, head.input, name="encoder")
    # Keep the zoo config (input size, ...) that `zoo.load` attaches to the encoder.
    object.__setattr__(encoder, "zoo_config", getattr(plain, "zoo_config", None))
    return encoder, head


def model_image_size(encoder, default: int = 224) -> int:
    """The input side recorded in a zoo model's config (`preprocessing.image_size`)."""
    config = getattr(encoder, "zoo_config", None) or {}
    size = (config.get("preprocessing") or {}).get("image_size")
    return int(size) if size else default


def features_for_splits(encoder, data: Any, image_size: int, batch_size: int = 256):
    """Frozen features of the `train` and `test` splits of `data` (computed once)."""
    from kclr import data as kdata

    out = {}
    for split in ("train", "test"):
        dataset = kdata.labelled_dataset(
            data, split=split, image_size=image_size, batch_size=batch_size, recipe="eval"
        )
        out[split] = extract_features(encoder, dataset)
        if "labels" not in out[split] or (out[split]["labels"] < 0).all():
            raise ValueError(
                f"Evaluation needs labels, but the {split!r} split of {data!r} has none. Use a "
                "folder of class subfolders (with train/ and test/ or val/), TFRecords with "
                "labels, or 'demo'."
            )
    return out


def evaluate_model(
    model: str,
    data: Any,
    protocol: str = "linear",
    image_size: int | None = None,
    batch_size: int = 256,
    k: int = 200,
    temperature: float = 0.07,
    epochs: int = 90,
    linear_batch_size: int = 4096,
    learning_rate: float = 0.1,
    weight_decay: float = 0.0,
    seed: int = 0,
    write: bool = True,
) -> dict[str, Any]:
    """Runs the `"linear"` or `"knn"` protocol on a saved model.

    The encoder is frozen (BatchNorm in inference mode); the features of the train
    and test splits are computed once; then a linear classifier is trained as
    `kclr.evaluation.linear_evaluation` (SGD Nesterov, cosine, `epochs`), or a
    weighted kNN classifies the test features.

    Returns:
        A dict with `top1`, `top5` and the settings; also written to
        `<model folder>.results.json` when `write` and the model is a local folder.

    Example:

    ```python
    kclr.evaluation.evaluate_model("runs/demo/export", "demo", "knn")
    ```
    """
    if protocol not in ("linear", "knn"):
        raise ValueError(f"protocol must be 'linear' or 'knn'; received {protocol!r}.")
    encoder, _ = load_model(model)
    size = image_size or model_image_size(encoder)
    feats = features_for_splits(encoder, data, size, batch_size)
    train, test = feats["train"], feats["test"]
    if protocol == "knn":
        result: dict[str, Any] = knn_evaluate(
            train["features"], train["labels"], test["features"], test["labels"], k, temperature
        )
        result.update(k=int(k), temperature=float(temperature))
    else:
        result = linear_evaluation(
            train["features"], train["labels"], test["features"], test["labels"],
            epochs=epochs, batch_size=linear_batch_size, learning_rate=learning_rate,
            weight_decay=weight_decay, seed=seed,
        )  # fmt: skip
    result.update(
        protocol=protocol,
        model=str(model),
        data=str(data),
        image_size=int(size),
        num_train=int(len(train["labels"])),
        num_test=int(len(test["labels"])),
    )
    if write:
        path = write_results(model, protocol, result)
        if path is not None:
            result["results_file"] = str(path)
    return result


def results_path(model: str) -> pathlib.Path | None:
    """`<folder>.results.json` beside a local model folder (None for zoo/Hub names)."""
    path = pathlib.Path(str(model))
    if path.is_dir():
        return path.parent / f"{path.resolve().name}.results.json"
    return None


def write_results(
    model: str, protocol: str, result: dict[str, Any], path=None
) -> pathlib.Path | None:
    """Adds `result` under `protocol` to the model's results JSON (atomic rewrite)."""
    path = pathlib.Path(path) if path else results_path(model)
    if path is None:
        return None
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
    data[protocol] = {k: v for k, v in result.items() if _jsonable(v)}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def format_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A plain-text table of result dicts (floats with 2 decimals)."""
    if not rows:
        return ""
    columns = columns or list(rows[0])

    def cell(value: Any) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    widths = [max(len(c), *(len(cell(r.get(c, ""))) for r in rows)) for c in columns]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    for row in rows:
        lines.append(
            "  ".join(cell(row.get(c, "")).ljust(w) for c, w in zip(columns, widths, strict=True))
        )
    return "\n".join(lines)
