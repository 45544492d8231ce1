"""The check of an exported file: load it in a process where kclr cannot be imported.

The parent saves fixed images to an `.npy` file and runs `CHILD_SCRIPT` in a fresh Python:
the script makes `import kclr` fail (`sys.modules["kclr"] = None`, the repository root off
`sys.path`), loads the file with keras / tensorflow / tflite / onnxruntime / keras_hub only,
runs it on the images and writes the outputs and its load time. The parent compares them
with kclr's own outputs.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[2]
NUM_IMAGES = 4
SEED = 0

# The first lines make kclr unimportable; everything after them sees only third-party packages.
CHILD_PRELUDE = """
import os, sys
sys.modules["kclr"] = None  # `import kclr` now raises ImportError
_root = os.path.realpath(os.environ["KCLR_EXPORT_CHECK_ROOT"])
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.getcwd()) != _root]
"""

CHILD_SCRIPT = (
    CHILD_PRELUDE
    + """
import json, time
import numpy as np

args = json.loads(sys.argv[1])
try:
    import kclr  # noqa: F401
    kclr_importable = True
except ImportError:
    kclr_importable = False
images = np.load(args["images"])
fmt, path = args["format"], args["path"]
extra = {}
# Import first: `load_s` times the loading only, not the imports.
if fmt in ("keras", "keras-hub") and args.get("keras_hub"):
    import keras_hub  # (registers keras-hub's classes)
if fmt in ("keras", "keras-hub"):
    import keras
elif fmt in ("saved_model", "tflite"):
    import tensorflow as tf
elif fmt == "onnx":
    import onnxruntime
start = time.perf_counter()
if fmt == "keras":
    model = keras.saving.load_model(path, compile=False)
    load_s = time.perf_counter() - start
    outputs = np.asarray(model(images, training=False))
elif fmt == "saved_model":
    loaded = tf.saved_model.load(path)
    load_s = time.perf_counter() - start
    outputs = loaded.serve(tf.constant(images)).numpy()
    signature = loaded.signatures["serving_default"]
    extra["signatures"] = sorted(loaded.signatures.keys())
    extra["signature_inputs"] = {
        k: v.shape.as_list() for k, v in signature.structured_input_signature[1].items()
    }
    extra["signature_outputs"] = {
        k: v.shape.as_list() for k, v in signature.structured_outputs.items()
    }
elif fmt == "tflite":
    interpreter = tf.lite.Interpreter(model_path=path)
    load_s = time.perf_counter() - start
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(images.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, images)
    interpreter.invoke()
    outputs = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
elif fmt == "onnx":
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    load_s = time.perf_counter() - start
    outputs = session.run(None, {session.get_inputs()[0].name: images})[0]
elif fmt == "keras-hub":
    backbone = keras_hub.models.Backbone.from_preset(path)
    converter = keras_hub.layers.ImageConverter.from_preset(path)
    load_s = time.perf_counter() - start
    tokens = np.asarray(backbone(converter(images * 255.0)))
    pooling, prefix = args["pooling"], args["num_prefix_tokens"]
    if tokens.ndim == 4:
        outputs = tokens.max(axis=(1, 2)) if pooling == "max" else tokens.mean(axis=(1, 2))
    elif pooling == "cls":
        outputs = tokens[:, 0, :]
    else:
        outputs = tokens[:, prefix:, :].mean(axis=1)
    classifier = keras_hub.models.ImageClassifier.from_preset(path, num_classes=3)
    extra["backbone_class"] = type(backbone).__name__
    extra["image_classifier_class"] = type(classifier).__name__
    extra["image_classifier_output_shape"] = list(
        classifier.predict(images * 255.0, verbose=0).shape
    )
else:
    raise SystemExit(f"unknown format {fmt!r}")
np.save(args["outputs"], np.asarray(outputs, dtype="float32"))
with open(args["report"], "w") as file:
    json.dump({"load_s": load_s, "kclr_importable": kclr_importable, **extra}, file)
"""
)


class ExportCheckError(RuntimeError):
    """An exported file did not load, or its outputs differ from kclr's beyond the bound."""


def check_images(image_size: int) -> np.ndarray:
    """The fixed images every check runs on: `[4, S, S, 3]` float32 RGB in [0, 1], seeded."""
    rng = np.random.default_rng(SEED)
    return rng.random((NUM_IMAGES, image_size, image_size, 3)).astype("float32")


def child_environment() -> dict[str, str]:
    """The child's environment: quiet TensorFlow, and the root that it removes from sys.path."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["KCLR_EXPORT_CHECK_ROOT"] = os.fspath(REPOSITORY_ROOT)
    pythonpath = [
        p
        for p in env.get("PYTHONPATH", "").split(os.pathsep)
        if p and os.path.realpath(p) != os.path.realpath(REPOSITORY_ROOT)
    ]
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    return env


def run_child(fmt: str, path: str | os.PathLike, images: np.ndarray, **options: Any):
    """Loads `path` in a Python process without kclr and runs it on `images`.

    Args:
        fmt: the format (`"keras"`, `"saved_model"`, `"tflite"`, `"onnx"`, `"keras-hub"`).
        path: the written file or folder.
        images: `[B, S, S, 3]` float32 images.
        **options: format details the child needs (`keras_hub`, `pooling`, ...).

    Returns:
        `(outputs, report)`: the child's outputs and its report (`load_s`,
        `kclr_importable`, format details such as the SavedModel's signatures).

    Raises:
        ExportCheckError: the child failed; the message holds the end of its stderr.
    """
    with tempfile.TemporaryDirectory(prefix="kclr-export-check-") as scratch:
        scratch = pathlib.Path(scratch)
        np.save(scratch / "images.npy", images)
        args = {
            "format": fmt,
            "path": os.fspath(path),
            "images": os.fspath(scratch / "images.npy"),
            "outputs": os.fspath(scratch / "outputs.npy"),
            "report": os.fspath(scratch / "report.json"),
            **options,
        }
        result = subprocess.run(
            [sys.executable, "-c", CHILD_SCRIPT, json.dumps(args)],
            cwd=scratch,
            env=child_environment(),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ExportCheckError(
                f"The {fmt} export at {os.fspath(path)!r} failed to load or run in a Python "
                f"process without kclr (exit code {result.returncode}):\n"
                f"{result.stderr[-3000:]}"
            )
        outputs = np.load(scratch / "outputs.npy")
        report = json.loads((scratch / "report.json").read_text())
    return outputs, report
