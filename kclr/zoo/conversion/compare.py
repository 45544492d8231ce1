"""Compare a kclr model with the authors' SavedModel on the same images.

Reference: google-research/simclr README colab: `sm = tf.saved_model.load(path)`,
`out = sm(images, trainable=False)`, a dict with `final_avg_pool` (the features) and
`logits_sup` (the supervised head), among others.

The authors' SavedModel is loaded with `tf.saved_model.load` and runs its own graph:
this is the one place where kclr executes a downloaded file, and only on request
(`kclr zoo verify --reference`) or when converting a SavedModel you passed yourself.
The reported relative difference is `max |kclr - official| / max |official|` per
output; a comparison passes when every relative difference is at most `tolerance`.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from kclr.zoo.preprocessing import preprocess

TOLERANCE = 1e-4
_OUTPUTS = {"features": "final_avg_pool", "logits": "logits_sup"}
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}


def generated_images(count: int = 4, image_size: int = 224, seed: int = 0) -> np.ndarray:
    """Deterministic test images in [0, 1]: smooth gradients plus noise."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, 1.0, image_size, dtype=np.float32)
    base = (grid[None, :, None] + grid[:, None, None]) / 2
    noise = rng.uniform(size=(count, image_size, image_size, 3)).astype(np.float32)
    return np.clip(0.5 * base[None] + 0.5 * noise, 0.0, 1.0).astype(np.float32)


def folder_images(folder: str | os.PathLike, image_size: int = 224, limit: int = 8) -> np.ndarray:
    """Up to `limit` images of a folder, prepared with `kclr.zoo.preprocess`."""
    import tensorflow as tf

    paths = sorted(
        p for p in pathlib.Path(folder).iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES
    )[:limit]
    if not paths:
        raise FileNotFoundError(
            f"No images (.jpg, .png, .bmp, .gif) in {os.fspath(folder)!r}; pass a folder of "
            "images or leave --images out to use generated ones."
        )
    prepared = []
    for path in paths:
        image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
        prepared.append(np.asarray(preprocess(image, image_size=image_size)))
    return np.stack(prepared)


def run_official(saved_model: str | os.PathLike, images: np.ndarray) -> dict[str, np.ndarray]:
    """Runs the authors' SavedModel as the README colab does: `sm(images, trainable=False)`."""
    import tensorflow as tf

    path = os.fspath(saved_model)
    if pathlib.Path(path, "tfhub_module.pb").is_file():
        raise FileNotFoundError(
            f"{path!r} is a TF1 Hub module (tfhub_module.pb), which TensorFlow 2 cannot load "
            "with tf.saved_model.load. Use the authors' TF2 SavedModel of the same model "
            "(gs://simclr-checkpoints-tf2/.../saved_model/)."
        )
    if not pathlib.Path(path, "saved_model.pb").is_file():
        raise FileNotFoundError(
            f"{path!r} is not a SavedModel folder (no saved_model.pb). Pass the authors' "
            "TF2 SavedModel folder (gs://simclr-checkpoints-tf2/.../saved_model/)."
        )
    module = tf.saved_model.load(path)
    outputs = module(tf.constant(images, tf.float32), trainable=False)
    if not isinstance(outputs, dict):
        raise ValueError(
            f"The SavedModel at {path!r} returned {type(outputs).__name__}; the authors' "
            "released SavedModels return a dict with 'final_avg_pool' and 'logits_sup'."
        )
    return {k: np.asarray(v) for k, v in outputs.items()}


def _difference(ours: np.ndarray, official: np.ndarray) -> dict[str, float]:
    if ours.shape != official.shape:
        raise ValueError(f"shape {ours.shape} (kclr) vs {official.shape} (official)")
    absolute = float(np.max(np.abs(ours.astype(np.float64) - official)))
    scale = float(np.max(np.abs(official))) or 1.0
    return {"max_abs": absolute, "max_rel": absolute / scale}


def compare(
    ours: dict[str, np.ndarray], official: dict[str, np.ndarray], tolerance: float = TOLERANCE
) -> dict[str, Any]:
    """Differences of the outputs both sides have (`features`, `logits`)."""
    results = {}
    for name, key in _OUTPUTS.items():
        if name in ours and key in official:
            results[name] = _difference(np.asarray(ours[name]), official[key])
    if "features" not in results:
        raise ValueError(
            "The official outputs lack 'final_avg_pool' (found: "
            f"{sorted(official)}); cannot compare features."
        )
    passed = all(r["max_rel"] <= tolerance for r in results.values())
    return {"outputs": results, "tolerance": tolerance, "passed": passed}


def describe(result: dict[str, Any]) -> str:
    """One line: `features max abs 1.2e-06, max rel 3.4e-07; logits ...`."""
    parts = [
        f"{name} max abs {r['max_abs']:.3g}, max rel {r['max_rel']:.3g}"
        for name, r in result["outputs"].items()
    ]
    verdict = "within" if result["passed"] else "ABOVE"
    return "; ".join(parts) + f" ({verdict} tolerance {result['tolerance']:g})"


def compare_with_saved_model(
    bundle,
    saved_model: str | os.PathLike,
    images: np.ndarray | None = None,
    image_size: int | None = None,
    tolerance: float = TOLERANCE,
) -> dict[str, Any]:
    """Runs `bundle` (kclr's dict model) and the SavedModel on the same images."""
    if images is None:
        images = generated_images(2, image_size or 224)
    images = np.asarray(images, np.float32)
    official = run_official(saved_model, images)
    ours = {k: np.asarray(v) for k, v in bundle(images, training=False).items()}
    result = compare(ours, official, tolerance)
    result["images"] = int(images.shape[0])
    result["image_size"] = int(images.shape[1])
    return result
