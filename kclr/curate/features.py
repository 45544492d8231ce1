"""Frozen features of every image of a source, with the paths they belong to.

`open_encoder` opens a model reference through the one door, `kclr.zoo.open_model`;
`extract` runs it over a source with `kclr.evaluation.extract_features` (the
`"eval"` recipe, BatchNorm in inference mode, as `kclr extract` does) and checks what
curation needs that training does not: every image accounted for (an unreadable image
is an error naming it, not a silent gap in the report), an input size the model
accepts, and a source that holds images at all. `load_features` reads what
`kclr extract` wrote.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np


class CurateInputError(ValueError):
    """An input of `kclr curate` cannot be used as given; the message says how to fix it."""


def open_encoder(model: Any):
    """The opened model (`kclr.zoo.LoadedModel`) of a reference or a Keras model.

    Everything `kclr.curate` encodes with comes through the one door for models,
    `kclr.zoo.open_model` (a zoo name, `hf://...`, a run or export folder, a `.keras`
    classifier or a built `keras.Model`).
    """
    from kclr import zoo

    return zoo.open_model(model)


def _input_side(opened, model: Any, image_size: int | None) -> int:
    encoder = opened.model
    size = int(image_size or opened.image_size or 224)
    inputs = getattr(encoder, "inputs", None) or []
    shape = tuple(inputs[0].shape) if inputs else ()
    fixed = shape[1:3] if len(shape) == 4 else ()
    if fixed and None not in fixed and tuple(fixed) != (size, size):
        raise CurateInputError(
            f"Model {model!r} takes {fixed[0]}x{fixed[1]} images, but the images would be "
            f"resized to {size}x{size}. Leave out --image-size (or image_size=) to use the "
            f"model's size, or pass --image-size {fixed[0]}."
        )
    return size


def _resolve(data: Any, split: str, skip_unreadable: bool):
    import warnings

    from kclr import data as kdata

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped files are reported below, by name
            source = kdata.resolve_source(data, split)
    except kdata.UnreadableSourceError as error:
        raise CurateInputError(
            f"{error} Point --data at a folder holding images (JPEG, PNG, GIF, BMP), "
            "directly or in class subfolders."
        ) from None
    skipped = list(getattr(source, "skipped", None) or [])
    if skipped and not skip_unreadable:
        shown = "; ".join(f"{path} ({why})" for path, why in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        raise CurateInputError(
            f"{len(skipped)} image file(s) of {data!r} cannot be read: {shown}{more}. Repair "
            "or remove them, or pass --skip-unreadable (skip_unreadable=True) to leave them "
            "out of the report."
        )
    return source


def extract(
    model: Any,
    data: Any,
    image_size: int | None = None,
    batch_size: int = 256,
    split: str = "train",
    skip_unreadable: bool = False,
) -> dict[str, Any]:
    """Frozen features of every image of `data`.

    Args:
        model: a Keras encoder, or a reference `kclr.zoo.load` accepts (a zoo name,
            `hf://owner/repo`, a run's `export/` folder).
        data: what `kclr.data.resolve_source` accepts: a folder of images (flat or in
            class subfolders), TFRecords, `"demo"`, arrays.
        image_size: the side images are resized to (default: the model's, else 224).
        batch_size: images per forward pass.
        split: `"train"` (a folder without train/test subfolders is all `"train"`) or
            `"test"`.
        skip_unreadable: leave unreadable image files out instead of stopping.

    Returns:
        `{"features": float32 [N, D], "paths": str [N], "labels": int64 [N]}` (label -1
        where unknown) and `"images"`, the source's arrays for an array source (else
        absent), so that reports can show them.
    """
    from kclr import data as kdata
    from kclr.evaluation import extract_features

    opened = open_encoder(model)
    encoder = opened.model
    size = _input_side(opened, model, image_size)
    source = _resolve(data, split, skip_unreadable)
    dataset = kdata.labelled_dataset(
        source, split=split, image_size=size, batch_size=batch_size, recipe="eval",
        with_filenames=True,
    )  # fmt: skip
    try:
        out = extract_features(encoder, dataset)
    except ValueError as error:  # no image decoded, or a shape the model rejects
        if "is empty" in str(error):
            raise CurateInputError(
                f"No image of {data!r} could be decoded. Check the files (JPEG, PNG, GIF, BMP)."
            ) from None
        raise CurateInputError(
            f"Model {model!r} could not encode {size}x{size} images of {data!r}: "
            f"{str(error).splitlines()[0]} Pass the --image-size the model was trained at."
        ) from None
    paths = out.get("filenames")
    if source.kind == "files":
        missing = sorted(set(source.files) - set(paths.tolist()))
        if missing and not skip_unreadable:
            shown = "; ".join(missing[:5])
            raise CurateInputError(
                f"{len(missing)} image file(s) of {data!r} could not be decoded: {shown}. "
                "Repair or remove them, or pass --skip-unreadable (skip_unreadable=True)."
            )
    result = {
        "features": out["features"],
        "paths": np.asarray(paths).astype(str),
        "labels": out.get("labels", np.full(len(out["features"]), -1, np.int64)),
    }
    if source.kind == "arrays":
        result["images"] = source.images
    return result


def load_features(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Features and paths written by `kclr extract` (`X.npy` and `X.filenames.txt`)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CurateInputError(
            f"Features file {str(path)!r} does not exist. Write one with `kclr extract MODEL "
            "--data SOURCE --out features.npy`, or pass a model and --data."
        )
    features = np.load(path)
    names = path.with_name(path.stem + ".filenames.txt")
    if not names.is_file():
        raise CurateInputError(
            f"{str(names)!r} is missing: the paths of the rows of {str(path)!r} are read from "
            "it (`kclr extract` writes both)."
        )
    paths = names.read_text(encoding="utf-8").splitlines()
    if len(paths) != len(features):
        raise CurateInputError(
            f"{str(path)!r} has {len(features)} rows but {str(names)!r} lists {len(paths)} "
            "paths; write both again with `kclr extract`."
        )
    return features, paths
