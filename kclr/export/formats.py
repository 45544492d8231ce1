"""Writers of the export formats: `.keras`, SavedModel, TFLite, ONNX.

Each writer takes the `kclr.export.source.Source` to export and a path to write (a
temporary path next to the destination: `kclr.export.api` moves it into place once the
check passed) and returns details for the report. The keras-hub preset writer is in
`kclr.export.keras_hub_preset`.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from kclr.export.plain import plain_model
from kclr.export.source import Source

ONNX_OPSET = 17
ONNX_INSTALL_HINT = 'pip install "kclr[onnx]"'


def fixed_input_model(source: Source):
    """kclr's model behind a fixed input `images: [None, S, S, 3]` (the exported signature)."""
    import keras

    size = source.image_size
    inputs = keras.Input((size, size, 3), name="images")
    return keras.Model(inputs, source.model(inputs, training=False), name=source.model.name)


def serving_function(source: Source):
    """A `tf.function` images `[None, S, S, 3]` float32 -> kclr's outputs, in inference mode."""
    import tensorflow as tf

    size = source.image_size
    model = source.model
    signature = [tf.TensorSpec([None, size, size, 3], tf.float32, name="images")]

    @tf.function(input_signature=signature)
    def serve(images):
        return model(images, training=False)

    return serve, signature


def write_keras(source: Source, path: str, float16: bool = False) -> dict[str, Any]:
    """A `.keras` file of built-in Keras layers (see `kclr.export.plain`)."""
    plain = plain_model(source.model, source.image_size, name=_plain_name(source.model.name))
    plain.save(path)
    return {}


def write_saved_model(source: Source, path: str, float16: bool = False) -> dict[str, Any]:
    """A TF SavedModel with the endpoint `serve` and the signature `serving_default`."""
    fixed_input_model(source).export(path, format="tf_saved_model", verbose=False)
    return {"endpoint": "serve", "signature": "serving_default"}


def write_tflite(source: Source, path: str, float16: bool = False) -> dict[str, Any]:
    """A TFLite flatbuffer (float32, or float16 weights), input `[1, S, S, 3]` resizable.

    Converted from a SavedModel written first (in a temporary folder next to `path`):
    converting the Keras 3 model's concrete function directly gives NaN outputs with
    TF 2.21, the SavedModel route gives kclr's outputs.
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.fspath(path)) or None) as scratch:
        saved_model = os.path.join(scratch, "saved_model")
        write_saved_model(source, saved_model)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        if float16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        flatbuffer = converter.convert()
    with open(path, "wb") as file:
        file.write(flatbuffer)
    return {"weights": "float16" if float16 else "float32"}


def import_tf2onnx():
    """`tf2onnx`, or an ImportError naming the extra to install."""
    try:
        import tf2onnx
    except ImportError as error:
        raise ImportError(
            "--format onnx needs the tf2onnx package, which is not installed. Install the "
            f"ONNX extra with `{ONNX_INSTALL_HINT}` (tf2onnx, onnx and onnxruntime)."
        ) from error
    return tf2onnx


def write_onnx(source: Source, path: str, float16: bool = False) -> dict[str, Any]:
    """An ONNX model (opset 17) converted by tf2onnx from the serving function."""
    tf2onnx = import_tf2onnx()
    serve, signature = serving_function(source)
    tf2onnx.convert.from_function(
        serve, input_signature=signature, opset=ONNX_OPSET, output_path=os.fspath(path)
    )
    return {"opset": ONNX_OPSET}


def _plain_name(name: str) -> str:
    """The rebuilt model's name, without `kclr` in it (the `.keras` names no kclr class)."""
    return name.replace("kclr_", "").replace("kclr", "") or "model"
