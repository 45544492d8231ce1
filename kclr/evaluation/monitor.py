"""`KNNMonitor`: an online kNN accuracy logged at the end of training epochs."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from kclr.evaluation.features import extract_features
from kclr.evaluation.knn import knn_evaluate


class KNNMonitor(keras.callbacks.Callback):
    """Logs the weighted cosine kNN accuracy of the encoder on a labelled split.

    Reference: Wu et al., "Unsupervised Feature Learning via Non-Parametric
    Instance Discrimination", CVPR 2018 (the kNN monitor also used by solo-learn).

    At the end of every `every_n_epochs`-th epoch the encoder (`model.encoder`
    for a `kclr.ContrastiveTrainer`, or `encoder` if given) embeds `train_data`
    (the memory bank) and `test_data` with BatchNorm in inference mode, and
    `knn_top1` / `knn_top5` (percent) are added to the epoch logs, so that the
    CSV logger, TensorBoard and the progress line show them. Put this callback
    before loggers in the callback list.

    Args:
        train_data: labelled memory bank: NumPy `(images, labels)` or a finite
            tf.data.Dataset of `(images, labels)` batches.
        test_data: labelled data to classify, same forms.
        k: neighbours (200).
        temperature: vote temperature (0.07).
        every_n_epochs: evaluation period in epochs.
        encoder: the model to evaluate (default: `model.encoder`).
        batch_size: batch size for NumPy inputs.
        prefix: name prefix of the logged metrics.

    Example:

    ```python
    monitor = kclr.evaluation.KNNMonitor(kclr.data.demo.load("train"),
                                         kclr.data.demo.load("test"), k=200)
    trainer.fit(dataset, epochs=10, steps_per_epoch=100, callbacks=[monitor])
    ```
    """

    def __init__(
        self,
        train_data: Any,
        test_data: Any,
        k: int = 200,
        temperature: float = 0.07,
        every_n_epochs: int = 1,
        encoder=None,
        batch_size: int = 256,
        prefix: str = "knn",
    ) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1; received {every_n_epochs}.")
        self.train_data = train_data
        self.test_data = test_data
        self.k = int(k)
        self.temperature = float(temperature)
        self.every_n_epochs = int(every_n_epochs)
        self.encoder = encoder
        self.batch_size = int(batch_size)
        self.prefix = prefix
        self.history: list[dict[str, float]] = []

    def evaluate(self) -> dict[str, float]:
        """Computes kNN top-1 / top-5 (percent) now, with the current weights."""
        encoder = self.encoder if self.encoder is not None else self.model.encoder
        bank = extract_features(encoder, self.train_data, batch_size=self.batch_size)
        queries = extract_features(encoder, self.test_data, batch_size=self.batch_size)
        if "labels" not in bank or "labels" not in queries:
            raise ValueError("KNNMonitor needs labelled train and test data (images, labels).")
        return knn_evaluate(
            bank["features"],
            bank["labels"],
            queries["features"],
            queries["labels"],
            k=self.k,
            temperature=self.temperature,
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every_n_epochs:
            return
        result = self.evaluate()
        self.history.append({"epoch": epoch + 1, **result})
        if logs is not None:
            logs[f"{self.prefix}_top1"] = result["top1"]
            logs[f"{self.prefix}_top5"] = result["top5"]


@dataclasses.dataclass
class MonitorSources:
    """The data of a run's kNN monitor, and what training reads.

    Attributes:
        training: the training source (the rest of a folder after a hold-out).
        splits: `(memory bank, queries)` sources of the kNN, or None without labels.
        holdout: the `kclr.data.holdout.Holdout` of a folder without a split, or None.
        notes: lines for the run log (the held-out part; that kNN needs labels).
    """

    training: Any
    splits: tuple[Any, Any] | None = None
    holdout: Any = None
    notes: list[str] = dataclasses.field(default_factory=list)


def data_columns(cfg) -> dict[str, str | None]:
    """The `hf:` column choices of a run configuration (`data.image_column`, `data.label_column`)."""
    return {"image_column": cfg.data.image_column, "label_column": cfg.data.label_column}


def monitor_sources(cfg, training: Any) -> MonitorSources:
    """Resolves the kNN monitor's data of a run configuration `cfg`.

    `training` is the resolved training source (`data.source`, train split). The
    monitor reads `data.eval_source`, else `data.source`:

    - with a test split, its train and test splits;
    - a folder of class subfolders without a split: a seeded, class-balanced part
      (`eval.holdout_fraction` of every class, seed `eval.holdout_seed`, at most
      `eval.monitor_max_examples` images) is held out as the test split. When it is
      the training data, training uses the rest, so that the held-out images are as
      unseen as a real test split's;
    - `data.source` without labels (a flat folder): no kNN (`splits` is None), and a
      note that kNN needs labels; the label-free checks (`kclr.evaluation.health`)
      still run.

    Raises:
        ValueError: `data.eval_source` cannot be read or has no labels, or a labelled
            `data.source` cannot be split; the message names the key and the fixes.
    """
    from kclr import data as kdata
    from kclr.data import holdout
    from kclr.data.source_types import NoTestSplitError

    out = MonitorSources(training=training)
    if not cfg.eval.monitor:
        return out
    own = cfg.data.eval_source is None
    spec, where = (
        (cfg.data.source, "data.source") if own else (cfg.data.eval_source, "data.eval_source")
    )
    columns = data_columns(cfg) if own else {}
    try:
        train = training if own else kdata.resolve_source(spec, "train")
        if own and not train.has_labels:
            out.notes.append(
                f"kNN needs labels: {spec!r} has none, so the monitor runs the label-free "
                "checks only (effective rank, alignment, uniformity). Sort the images into "
                "class subfolders, or set `data.eval_source` to labelled data, for kNN."
            )
            return out
        try:
            test = kdata.resolve_source(spec, "test", **columns)
        except NoTestSplitError:
            if not train.has_labels:
                raise
            held = holdout.split_folder(
                train, cfg.eval.holdout_fraction, cfg.eval.holdout_seed,
                cfg.eval.monitor_max_examples,
            )  # fmt: skip
            out.holdout, test, train = held, held.test, held.train
            out.notes.append(held.describe() + (" Training uses the train split." if own else ""))
            if own:
                out.training = held.train
    except (ValueError, FileNotFoundError, OSError) as error:
        raise _read_error(where, spec, error) from None
    _check_labels(where, spec, train, test)
    out.splits = (train, test)
    return out


def knn_data(
    source: Any,
    image_size: int,
    max_examples: int | None,
    where: str = "data.source",
    splits: tuple[Any, Any] | None = None,
):
    """Labelled `(train, test)` data for `KNNMonitor` from `source`'s train and test splits.

    NumPy arrays (subsampled to `max_examples` train images, resized to `image_size`)
    for in-memory sources, finite labelled datasets otherwise (an image folder's train
    split is a class-balanced seeded subset of about `max_examples`; TFRecord and TFDS
    splits are used whole). `splits` gives the two splits already resolved (e.g. by
    `monitor_sources`, a folder's held-out part); `source` is then only named in errors.

    Raises:
        ValueError: the source cannot be read or has no labelled test split; the message
            names `where` (the config key) and the fixes.
    """
    import numpy as np

    from kclr import data as kdata

    try:
        train, test = splits or (
            kdata.resolve_source(source, "train"),
            kdata.resolve_source(source, "test"),
        )
    except (ValueError, FileNotFoundError, OSError) as error:
        raise _read_error(where, source, error) from None
    _check_labels(where, source, train, test)
    if train.kind == "files" and max_examples:  # a class-balanced, seeded subset
        count = kdata.num_examples(train)
        if count > max_examples:
            train = kdata.resolve_source(train, label_fraction=max_examples / count)  # no rescan
    if train.kind != "arrays":
        return (
            kdata.labelled_dataset(train, "train", image_size=image_size, batch_size=256),
            kdata.labelled_dataset(test, "test", image_size=image_size, batch_size=256),
        )
    images, labels = train.images, train.labels
    if max_examples and len(images) > max_examples:
        keep = np.sort(np.random.default_rng(0).choice(len(images), max_examples, replace=False))
        images, labels = images[keep], labels[keep]
    test_images = test.images
    if images.shape[1:3] != (image_size, image_size):
        images, test_images = _resize(images, image_size), _resize(test_images, image_size)
    return (images, labels), (test_images, test.labels)


def _read_error(where: str, spec: Any, error: Exception) -> ValueError:
    return ValueError(
        f"The kNN monitor cannot read `{where}={spec!r}`: {error} Fix `{where}`, point "
        "`data.eval_source` at labelled data with train and test splits, or turn the "
        "monitor off with `--set eval.monitor=false`."
    )


def _check_labels(where: str, spec: Any, train, test) -> None:
    if not (train.has_labels and test.has_labels):
        raise ValueError(
            f"The kNN monitor needs labels, but `{where}={spec!r}` has none. Set "
            "`data.eval_source` to labelled data, or `--set eval.monitor=false`."
        )


def _resize(images, size: int):
    """Resizes uint8 images to `size` (bilinear, antialiased), keeping uint8."""
    import numpy as np
    import tensorflow as tf

    out = tf.image.resize(tf.cast(images, tf.float32), (size, size), antialias=True)
    return np.clip(np.round(out.numpy()), 0, 255).astype(np.uint8)


def knn_table(encoder, data, protocol, baseline_encoder=None) -> dict[str, float]:
    """kNN top-1 (%) of `encoder`; with a `baseline_encoder` (a randomly initialised
    encoder of the same architecture), also of it and of raw pixels (the images as
    they reach the encoder, flattened), for NumPy data and datasets alike.

    Args:
        encoder: the pretrained encoder.
        data: `(train, test)` as returned by `knn_data`.
        protocol: a `kclr.evaluation.protocols.KNNProtocol` (k, temperature).
        baseline_encoder: adds the `raw_pixels` and `random_encoder` rows.
    """
    train_data, test_data = data

    def top1(model) -> float:
        return protocol.run(
            extract_features(model, train_data), extract_features(model, test_data)
        )["top1"]

    table: dict[str, float] = {}
    if baseline_encoder is not None:
        table["raw_pixels"] = top1(keras.Sequential([keras.layers.Flatten()]))
        table["random_encoder"] = top1(baseline_encoder)
    table["pretrained_encoder"] = top1(encoder)
    return table


def format_knn_table(table: dict[str, float], k: int) -> str:
    """The table of `knn_table` as text."""
    names = {
        "raw_pixels": "raw pixels",
        "random_encoder": "random-init encoder",
        "pretrained_encoder": "pretrained encoder",
    }
    width = max(len(names.get(key, key)) for key in table)
    lines = [f"kNN top-1 on the test split (k={k}):"]
    lines += [f"  {names.get(key, key):<{width}}  {value:6.2f}%" for key, value in table.items()]
    return "\n".join(lines)
