"""`kclr.export.export`: write a kclr model in a format that runs without kclr, and check it."""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Any

import numpy as np

from kclr.durable import move_into_place
from kclr.export import formats
from kclr.export.check import ExportCheckError, check_images, run_child
from kclr.export.keras_hub_preset import keras_hub_encoder, write_keras_hub
from kclr.export.source import Source
from kclr.export.source import source as export_source

# format -> (writer, file suffix or None for a folder)
WRITERS = {
    "keras": (formats.write_keras, ".keras"),
    "saved_model": (formats.write_saved_model, None),
    "tflite": (formats.write_tflite, ".tflite"),
    "onnx": (formats.write_onnx, ".onnx"),
    "keras-hub": (write_keras_hub, None),
}
FORMATS = tuple(WRITERS)
# Max |exported - kclr| allowed, relative to max(1, max |kclr output|) (see docs/export.md).
FLOAT32_BOUND = 1e-5
FLOAT16_BOUND = 2e-2


def export(
    model: Any,
    format: str,  # noqa: A002 - the CLI's --format
    out: str | os.PathLike,
    *,
    image_size: int | None = None,
    float16: bool = False,
    check: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Writes `model` as `format` at `out`, checks it without kclr, and returns the report.

    The exported model maps float32 RGB images in [0, 1], `[B, S, S, 3]`, to the encoder's
    features `[B, feature_dim]` (or a fine-tuned classifier's logits `[B, classes]`),
    exactly as kclr computes them in inference mode. The file is written to a temporary
    path next to `out`, loaded and run in a Python process that cannot import kclr, compared
    with kclr's own outputs on 4 seeded random images, and only then moved to `out`.

    Args:
        model: a run directory, its `export/` folder, a zoo name or folder, a fine-tuned
            classifier `X.keras` (`kclr finetune --out X`), or a `keras.Model`.
        format: one of `kclr.export.FORMATS`: `"keras"`, `"saved_model"`, `"tflite"`,
            `"onnx"`, `"keras-hub"` (a `KerasHubEncoder`'s backbone as a keras-hub preset).
        out: the file (`.keras`, `.tflite`, `.onnx`; the suffix is added when missing) or
            folder (`saved_model`, `keras-hub`) to write.
        image_size: the input side `S` (default: the model's, from its zoo config).
        float16: TFLite only: store the weights as float16 (about half the size).
        check: load and run the written file without kclr and compare the outputs.
        overwrite: replace an existing `out` (only once the new export has passed).

    Returns:
        The report: `format`, `path`, `size_bytes` (a folder's total), `input_shape`,
        `output` (`"features"` or `"logits"`), `output_shape` and, when checked,
        `load_s` (load time in the child), `max_abs_diff`, `bound` and the format's
        details (the SavedModel's signatures, the TFLite weight type, the ONNX opset, the
        keras-hub classes).

    Raises:
        ValueError: an unknown format, `float16` with another format than tflite, or a
            model the format cannot hold (the message names the formats that can).
        FileExistsError: `out` exists and `overwrite` is False.
        ExportCheckError: the export failed to load without kclr or differs from kclr's
            outputs by more than the bound; nothing is left at `out`.

    Example:

    ```python
    report = kclr.export.export("runs/simclr/export", "onnx", "exports/simclr.onnx")
    print(report["max_abs_diff"], report["bound"])
    ```
    """
    if format not in WRITERS:
        raise ValueError(f"Unknown export format {format!r}; expected one of {list(FORMATS)}.")
    if float16 and format != "tflite":
        raise ValueError(
            f"float16 (--float16) applies to --format tflite only; received --format {format}."
        )
    writer, suffix = WRITERS[format]
    target = destination(out, suffix)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"Refusing to overwrite {os.fspath(target)!r}: it exists. Choose another --out "
            "or pass --overwrite (overwrite=True)."
        )
    if format == "onnx":
        formats.import_tf2onnx()  # fail before any work
    source = export_source(model, image_size)
    if format == "keras-hub":
        keras_hub_encoder(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent) as staging:
        staged = pathlib.Path(staging) / target.name
        details = writer(source, os.fspath(staged), float16=float16)
        report = _report(source, format, target, staged, details)
        if check:
            report.update(verify(source, format, staged, float16, details))
        move_into_place(staged, target)  # an old `target` is removed only after that
    return report


def destination(out: str | os.PathLike, suffix: str | None) -> pathlib.Path:
    """`out` with the format's file suffix (added when missing), or a folder for folders."""
    path = pathlib.Path(out).absolute()  # the check runs in another working directory
    if suffix is None:
        if path.suffix in {s for _, s in WRITERS.values() if s}:
            raise ValueError(
                f"--out {os.fspath(out)!r} names a file, but this format writes a folder. "
                "Pass a folder path."
            )
        return path
    if path.suffix == suffix:
        return path
    if path.suffix:
        raise ValueError(
            f"--out {os.fspath(out)!r} ends in {path.suffix!r}, but this format writes a "
            f"{suffix} file. Use a path ending in {suffix}."
        )
    return path.with_name(path.name + suffix)


def verify(
    source: Source, format: str, path: pathlib.Path, float16: bool, details: dict[str, Any]
) -> dict[str, Any]:  # noqa: A002
    """Runs the export at `path` without kclr on the check images and compares with kclr."""
    images = check_images(source.image_size)
    expected = np.asarray(source.model(images, training=False), dtype="float64")
    options = {
        "keras_hub": format == "keras-hub"
        or (format == "keras" and type(source.encoder).__name__ == "KerasHubEncoder"),
        "pooling": details.get("pooling"),
        "num_prefix_tokens": details.get("num_prefix_tokens", 0),
    }
    outputs, child = run_child(format, path, images, **options)
    if child.get("kclr_importable"):
        raise ExportCheckError(
            f"The {format} check is void: kclr was importable in the check process."
        )
    if outputs.shape != expected.shape:
        raise ExportCheckError(
            f"The {format} export returns outputs of shape {outputs.shape}, but kclr's model "
            f"returns {expected.shape}."
        )
    scale = max(1.0, float(np.abs(expected).max()))
    bound = (FLOAT16_BOUND if float16 else FLOAT32_BOUND) * scale
    difference = float(np.abs(outputs.astype("float64") - expected).max())
    if not difference <= bound:
        raise ExportCheckError(
            f"The {format} export differs from kclr's outputs by {difference:.3g} (max abs "
            f"over {len(images)} images), more than the bound {bound:.3g}; nothing was "
            "written. Report this with the model's config."
        )
    extra = {k: v for k, v in child.items() if k not in ("load_s", "kclr_importable")}
    return {
        "load_s": round(float(child["load_s"]), 3),
        "max_abs_diff": difference,
        "bound": bound,
        "kclr_importable_in_check": False,
        **extra,
    }


def _report(source, format, target, staged, details) -> dict[str, Any]:  # noqa: A002
    size = source.image_size
    output_shape = [None, *source.model.output_shape[1:]]
    return {
        "format": format,
        "path": os.fspath(target),
        "size_bytes": size_of(staged),
        "model": source.name,
        "output": source.output,
        "input_shape": [None, size, size, 3],
        "output_shape": output_shape,
        **details,
    }


def size_of(path: pathlib.Path) -> int:
    """A file's size in bytes, or the total of a folder's files."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def format_reports(reports: list[dict[str, Any]]) -> str:
    """A text table of export reports: format, size, child load time, max diff, bound, path."""
    header = ("FORMAT", "SIZE", "LOAD_S", "MAX_DIFF", "BOUND", "PATH")
    rows = [header]
    for report in reports:
        label = report["format"] + ("-fp16" if report.get("weights") == "float16" else "")
        rows.append(
            (
                label,
                _size(report["size_bytes"]),
                "-" if "load_s" not in report else f"{report['load_s']:.2f}",
                "-" if "max_abs_diff" not in report else f"{report['max_abs_diff']:.2e}",
                "-" if "bound" not in report else f"{report['bound']:.1e}",
                report["path"],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)
