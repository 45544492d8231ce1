"""Batched feature extraction with a frozen encoder (BatchNorm in inference mode)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kclr.durable import atomic_writer


def _as_dataset(data: Any, batch_size: int):
    """`data` as a finite tf.data.Dataset of `(images, labels[, filenames])` or images."""
    import tensorflow as tf

    from kclr.data.teardown import closes_promptly

    if isinstance(data, tf.data.Dataset):
        return closes_promptly(data)  # its iterator is deleted after each pass
    if isinstance(data, dict):
        data = tuple(data[k] for k in ("images", "labels", "filenames") if k in data)
    if isinstance(data, (tuple, list)):
        arrays = tuple(np.asarray(a) for a in data)
        if len({len(a) for a in arrays}) != 1:
            raise ValueError(
                "Images, labels and file names must have the same length; received "
                f"lengths {[len(a) for a in arrays]}."
            )
        return closes_promptly(tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size))
    return closes_promptly(tf.data.Dataset.from_tensor_slices(np.asarray(data)).batch(batch_size))


def _to_float(images):
    import tensorflow as tf

    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 255.0
    return tf.cast(images, tf.float32)


def _forward_fn(encoder):
    """A cached `tf.function` running `encoder` in inference mode on [0, 1] floats."""
    import tensorflow as tf

    forward = getattr(encoder, "_kclr_extract_fn", None)
    if forward is not None:
        return forward

    @tf.function(reduce_retracing=True)
    def forward(images):
        outputs = encoder(_to_float(images), training=False)
        if isinstance(outputs, dict):
            outputs = outputs["features"]
        return tf.cast(outputs, tf.float32)

    try:
        object.__setattr__(encoder, "_kclr_extract_fn", forward)
    except (AttributeError, TypeError):
        pass
    return forward


def extract_features(
    encoder,
    data: Any,
    batch_size: int = 256,
    verbose: bool = False,
) -> dict[str, np.ndarray]:
    """Runs a frozen encoder over a labelled dataset, batch by batch.

    The encoder is called with `training=False`, so BatchNorm uses its moving
    statistics (the linear-evaluation protocol of SimCLR).

    Args:
        encoder: a `keras.Model` mapping images `[B, H, W, 3]` to features `[B, D]`
            (e.g. from `kclr.zoo.load`), or a model returning a dict with a
            `"features"` entry.
        data: a finite `tf.data.Dataset` of `(images, labels)` or
            `(images, labels, filenames)` batches (as `kclr.data.labelled_dataset`
            returns), or NumPy `(images, labels[, filenames])`, or images alone.
            uint8 images are scaled to [0, 1].
        batch_size: batch size used when `data` holds NumPy arrays.
        verbose: print a progress bar.

    Returns:
        A dict with `"features"` (float32 `[N, D]`), and `"labels"` (int64 `[N]`)
        and `"filenames"` (str `[N]`) when the data has them.

    Example:

    ```python
    encoder = kclr.zoo.load("runs/demo/export")
    out = kclr.evaluation.extract_features(encoder, kclr.data.demo.load("test"))
    out["features"].shape   # (1000, 128)
    ```
    """
    import keras

    dataset = _as_dataset(data, batch_size)
    forward = _forward_fn(encoder)

    features, labels, filenames = [], [], []
    progress = None
    if verbose:
        cardinality = int(dataset.cardinality())
        progress = keras.utils.Progbar(cardinality if cardinality > 0 else None, unit_name="batch")
    for element in dataset:
        if isinstance(element, (tuple, list)):
            images = element[0]
            if len(element) > 1:
                labels.append(np.asarray(element[1]).reshape(-1))
            if len(element) > 2:
                filenames.append(np.asarray(element[2]).reshape(-1))
        elif isinstance(element, dict):
            images = element.get("images", element.get("image"))
            if "labels" in element:
                labels.append(np.asarray(element["labels"]).reshape(-1))
            if "filenames" in element:
                filenames.append(np.asarray(element["filenames"]).reshape(-1))
        else:
            images = element
        features.append(forward(images).numpy())
        if progress is not None:
            progress.add(1)
    if not features:
        raise ValueError("The dataset given to extract_features is empty: no images to encode.")
    out = {"features": np.concatenate(features).astype(np.float32)}
    if labels:
        out["labels"] = np.concatenate(labels).astype(np.int64)
    if filenames:
        names = np.concatenate(filenames)
        out["filenames"] = np.array(
            [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
        )
    return out


def save_features(path, features: dict[str, np.ndarray]) -> list[str]:
    """Writes `features.npy` plus `*.labels.npy` / `*.filenames.txt` beside it.

    Each file is written with `kclr.durable.atomic_writer` (temporary name, fsync,
    rename), so an interrupted run never leaves a truncated file. Returns the paths written.
    """
    import pathlib

    path = pathlib.Path(path)
    if path.suffix != ".npy":
        path = path.with_suffix(path.suffix + ".npy") if path.suffix else path.with_suffix(".npy")
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = path.with_suffix("")
    written = []

    def _atomic(target: pathlib.Path, writer) -> None:
        with atomic_writer(target) as handle:
            writer(handle)
        written.append(str(target))

    _atomic(path, lambda h: np.save(h, features["features"]))
    if "labels" in features:
        _atomic(stem.with_name(stem.name + ".labels.npy"), lambda h: np.save(h, features["labels"]))
    if "filenames" in features:
        text = "\n".join(features["filenames"]) + "\n"
        _atomic(
            stem.with_name(stem.name + ".filenames.txt"), lambda h: h.write(text.encode("utf-8"))
        )
    return written
