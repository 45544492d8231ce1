"""Evaluation protocols on saved models: what `kclr eval`, `kclr finetune` and `kclr extract` run.

A model is anything the one door, `kclr.zoo.door.open_model`, accepts: a zoo name,
`hf://owner/repo[@rev]`, a run directory or a folder written by `kclr.zoo.save` (e.g.
`RUN_DIR/export`), or a model it opened already (`LoadedModel`). Results
are written as JSON next to a local model (`<folder>.results.json`, one entry
per protocol) and returned as dicts.

The protocols themselves (`knn`, `linear`, `finetune`) are registered components
whose constructor arguments are their settings, so a run config holds them as specs
(`linear_eval: {name: linear, config: {epochs: 90}}`) that `kclr eval linear` and
`kclr finetune` read.
"""

from __future__ import annotations

import inspect
import json
import pathlib
from typing import Any

from kclr.durable import atomic_write
from kclr.evaluation.features import extract_features
from kclr.evaluation.fine_tuning import finetune
from kclr.evaluation.knn import knn_evaluate
from kclr.evaluation.linear import linear_evaluation
from kclr.registry import protocols


def defaults(function) -> dict[str, Any]:
    """The keyword defaults of `function`: a protocol's settings default to those of the
    function that runs it, stated once there."""
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


KNN = defaults(knn_evaluate)
LINEAR = defaults(linear_evaluation)
FINETUNE = defaults(finetune)


def features_for_splits(encoder, data: Any, image_size: int, batch_size: int = 256):
    """Frozen features of the `train` and `test` splits of `data` (computed once).

    A folder of class subfolders without a split is split by `kclr.data.holdout`
    (the same default part that `kclr fit`'s monitor holds out).
    """
    from kclr import data as kdata
    from kclr.data import holdout

    train, test, _ = holdout.resolve_splits(data)  # a folder without a split: held out
    out = {}
    for split, source in (("train", train), ("test", test)):
        dataset = kdata.labelled_dataset(
            source, split=split, image_size=image_size, batch_size=batch_size, recipe="eval"
        )
        out[split] = extract_features(encoder, dataset)
        if "labels" not in out[split] or (out[split]["labels"] < 0).all():
            raise ValueError(
                f"Evaluation needs labels, but the {split!r} split of {data!r} has none. Use a "
                "folder of class subfolders (with train/ and test/ or val/), TFRecords with "
                "labels, or 'demo'."
            )
    return out


class Protocol:
    """Base class of evaluation protocols: the constructor takes the protocol's settings.

    A protocol is a component like a loss or an optimizer: registered in
    `kclr.registry.protocols`, described in a run config by a spec
    `{"name": "linear", "config": {"epochs": 90, ...}}`, and built with
    `kclr.spec.build`. `get_config()` returns the settings.
    """

    def __init__(self, **settings: Any) -> None:
        self._settings = dict(settings)
        for key, value in settings.items():
            setattr(self, key, value)

    def get_config(self) -> dict[str, Any]:
        return dict(self._settings)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._settings.items())
        return f"{type(self).__name__}({args})"


@protocols.register("knn", description="Weighted cosine kNN on frozen features (InstDisc)")
class KNNProtocol(Protocol):
    """Temperature-weighted cosine kNN (Wu et al., 2018; k=200, T=0.07).

    Used by `kclr eval knn`, the `KNNMonitor` of `kclr fit` and its final table.

    Args:
        k: neighbours.
        temperature: vote temperature.
    """

    def __init__(self, k: int = KNN["k"], temperature: float = KNN["temperature"]) -> None:
        super().__init__(k=int(k), temperature=float(temperature))

    def run(self, train: dict, test: dict) -> dict[str, Any]:
        """kNN top-1 / top-5 of `test` features against the `train` memory bank."""
        result = knn_evaluate(
            train["features"], train["labels"], test["features"], test["labels"],
            self.k, self.temperature,
        )  # fmt: skip
        return {**result, "k": self.k, "temperature": self.temperature}


@protocols.register("linear", description="SimCLR linear probe on cached frozen features")
class LinearProtocol(Protocol):
    """The SimCLR linear evaluation (Chen et al., 2020, B.6); see `linear_evaluation`, whose
    defaults are the settings' defaults.

    Args:
        epochs: classifier epochs (90 on ImageNet).
        batch_size: classifier batch size (4096; clipped to the data).
        learning_rate: base rate, scaled by `learning_rate_scaling`.
        learning_rate_scaling: `"linear"` (x B/256) or `"sqrt"` (x sqrt(B)).
        momentum: Nesterov momentum.
        weight_decay: L2 coefficient in the loss.
        seed: shuffling / initialisation seed.
    """

    def __init__(
        self,
        epochs: int = LINEAR["epochs"],
        batch_size: int = LINEAR["batch_size"],
        learning_rate: float = LINEAR["learning_rate"],
        learning_rate_scaling: str = LINEAR["learning_rate_scaling"],
        momentum: float = LINEAR["momentum"],
        weight_decay: float = LINEAR["weight_decay"],
        seed: int = LINEAR["seed"],
    ) -> None:
        super().__init__(
            epochs=int(epochs), batch_size=int(batch_size), learning_rate=float(learning_rate),
            learning_rate_scaling=learning_rate_scaling, momentum=float(momentum),
            weight_decay=float(weight_decay), seed=int(seed),
        )  # fmt: skip

    def run(self, train: dict, test: dict) -> dict[str, Any]:
        """Trains the classifier on `train` features and reports top-1 / top-5 on `test`."""
        return linear_evaluation(
            train["features"], train["labels"], test["features"], test["labels"],
            **self.get_config(),
        )  # fmt: skip


@protocols.register("finetune", description="SimCLRv2 fine-tuning on a label fraction")
class FinetuneProtocol(Protocol):
    """SimCLRv2 semi-supervised fine-tuning (Chen et al., 2020); see `finetune`, whose
    defaults are the settings' defaults (`ft_proj_selector` None: chosen from the model).

    Args:
        label_fraction: fraction of the labels per class (0.01, 0.1; 1 = all).
        ft_proj_selector: 0 = from the encoder output, 1 = from the first projection
            layer (SimCLRv2); None = 1 when the model has a projection head, else 0.
        epochs, batch_size, learning_rate, learning_rate_scaling, momentum,
            weight_decay, optimizer: the optimisation (`optimizer` "lars" or "sgd").
        recipe: training augmentation recipe.
        seed: seed of the label subset, shuffling and augmentation.
    """

    def __init__(
        self,
        label_fraction: float | None = FINETUNE["label_fraction"],
        ft_proj_selector: int | None = None,
        epochs: int = FINETUNE["epochs"],
        batch_size: int = FINETUNE["batch_size"],
        learning_rate: float = FINETUNE["learning_rate"],
        learning_rate_scaling: str = FINETUNE["learning_rate_scaling"],
        momentum: float = FINETUNE["momentum"],
        weight_decay: float = FINETUNE["weight_decay"],
        optimizer: str = FINETUNE["optimizer"],
        recipe: str = FINETUNE["recipe"],
        seed: int = FINETUNE["seed"],
    ) -> None:
        super().__init__(
            label_fraction=label_fraction, ft_proj_selector=ft_proj_selector,
            epochs=int(epochs), batch_size=int(batch_size), learning_rate=float(learning_rate),
            learning_rate_scaling=learning_rate_scaling, momentum=float(momentum),
            weight_decay=float(weight_decay), optimizer=optimizer, recipe=recipe, seed=int(seed),
        )  # fmt: skip

    def run(self, encoder, source: Any, projection_head=None, image_size: int = 224, verbose=1):
        """Fine-tunes `encoder` (in place) on `source`; returns `finetune`'s result dict."""
        settings = self.get_config()
        selector = settings.pop("ft_proj_selector")
        if selector is None:
            selector = 1 if projection_head is not None else 0
        return finetune(
            encoder, source, projection_head=projection_head, ft_proj_selector=selector,
            image_size=image_size, verbose=verbose, **settings,
        )  # fmt: skip


def evaluate_model(
    model: str,
    data: Any,
    protocol: Any = "linear",
    image_size: int | None = None,
    batch_size: int = 256,
    write: bool = True,
    **settings: Any,
) -> dict[str, Any]:
    """Runs the `"linear"` or `"knn"` protocol on a saved model.

    The encoder is frozen (BatchNorm in inference mode); the features of the train
    and test splits are computed once; then the protocol runs on them
    (`LinearProtocol`: SGD Nesterov, cosine; `KNNProtocol`: weighted kNN).

    Args:
        model: anything `kclr.zoo.door.open_model` accepts, or its `LoadedModel`.
        data: labelled data with train and test splits.
        protocol: a protocol name, a spec `{"name": "linear", "config": {...}}` or a
            built `Protocol`.
        image_size: input side (default: the model's).
        batch_size: feature-extraction batch size.
        write: write `<model folder>.results.json`.
        **settings: protocol settings overriding the spec's (`epochs=30`, `k=20`).

    Returns:
        A dict with `top1`, `top5` and the settings; also written to
        `<model folder>.results.json` when `write` and the model is a local folder.

    Example:

    ```python
    kclr.evaluation.evaluate_model("runs/demo/export", "demo", "knn", k=20)
    ```
    """
    from kclr import registry, spec

    if not isinstance(protocol, Protocol):
        checked = spec.normalize(protocol, "protocol")
        if checked["name"] not in ("linear", "knn"):
            raise ValueError(f"protocol must be 'linear' or 'knn'; received {checked['name']!r}.")
        checked["config"].update(settings)
        protocol = spec.build(registry.protocols, checked, where="protocol")
    from kclr.zoo.door import LoadedModel, open_model

    opened = model if isinstance(model, LoadedModel) else open_model(model)
    model = opened.name
    size = image_size or opened.image_size or 224
    feats = features_for_splits(opened.encoder, data, size, batch_size)
    result = protocol.run(feats["train"], feats["test"])
    name = registry.protocols.name_of(protocol)
    result.update(
        protocol=name,
        model=str(model),
        data=str(data),
        image_size=int(size),
        num_train=int(len(feats["train"]["labels"])),
        num_test=int(len(feats["test"]["labels"])),
    )
    if write:
        path = write_results(model, name, result)
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
    atomic_write(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
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
