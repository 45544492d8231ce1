"""`kclr.zoo.load` / `pull` / `convert` / `verify`: the zoo's doors, above its sub-packages.

`load` opens the model through the one door, `kclr.zoo.door.open_model`; `pull` only
resolves it to a local folder (`kclr.zoo.sources.resolve`); `convert` hands kclr's HTTP
downloader to the converter (`kclr.zoo.conversion` never imports the sources); `verify`
finds the model through the resolver and compares it with the authors' SavedModel
(`kclr.zoo.conversion.compare`).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

from kclr.zoo.conversion import converter
from kclr.zoo.conversion.compare import (
    TOLERANCE,
    compare_with_saved_model,
    folder_images,
    generated_images,
)
from kclr.zoo.door import open_model
from kclr.zoo.folder.format import load_bundle, with_head
from kclr.zoo.sources.http import download_checkpoint
from kclr.zoo.sources.resolve import pins_for, resolve


def pull(spec: str | os.PathLike, quiet: bool = False) -> pathlib.Path:
    """Makes a model available locally and returns its zoo folder.

    `spec` is a catalog name, `hf://owner/repo[@revision]`, an https URL of a zoo folder
    or a local folder (see `kclr.zoo.sources.resolve.resolve`).

    Example:

    ```python
    folder = kclr.zoo.pull("simclr-r50-1x")
    ```
    """
    return resolve(spec, quiet=quiet)


def load(spec: str | os.PathLike, include_head: bool = False):
    """Loads a pretrained encoder: images (RGB in [0, 1]) -> features.

    Args:
        spec: a catalog name (`"simclr-r50-1x"`, see `kclr zoo list`), a Hub reference
            `"hf://owner/repo[@revision]"`, an https URL of a zoo folder, a local zoo
            folder / run directory, or a fine-tuned classifier `X.keras`
            (`kclr.zoo.door.open_model` opens it).
        include_head: return a model whose output is a dict with `features`,
            `projection` (and `logits` if the checkpoint has a supervised head).

    Returns:
        A Keras model (a classifier file: its classifier, images -> logits). Prepare
        inputs with `kclr.zoo.preprocess`.

    Loading is safe by construction: only kclr's config schema and HDF5 weight arrays
    are read, the sha256 of the weights is checked against the pinned value and the
    folder's metadata, and nothing from a download is executed.

    Example:

    ```python
    encoder = kclr.zoo.load("simclr-r50-1x")
    features = encoder(kclr.zoo.preprocess(images))  # [B, 2048]
    ```
    """
    opened = open_model(spec)
    if not include_head:
        return opened.model
    if opened.bundle is None:
        raise ValueError(f"include_head=True needs a zoo model; {opened.name!r} is a classifier.")
    return with_head(opened, opened.name)


def convert(
    checkpoint: str | os.PathLike, arch: str | dict[str, Any] = "r50_1x", **options: Any
) -> converter.Converted:
    """Converts an authors' checkpoint (a path, a folder, an archive or an http(s) URL).

    `kclr.zoo.conversion.converter.convert` with kclr's HTTP downloader (resumable,
    content-checked) for URLs; every other argument (`out`, `ema`, `include_heads`,
    `cifar_stem`, `metadata`, `card`, `ft_proj_selector`, `verify`, `reference`,
    `verify_images`) is passed on as is.

    Example:

    ```python
    encoder, head, _ = kclr.zoo.convert("r50_1x_sk0/model.ckpt-250228", "r50_1x",
                                        out="simclrv2-r50-1x")
    ```
    """
    return converter.convert(checkpoint, arch, download=download_checkpoint, **options)


def verify(
    model: str | os.PathLike,
    reference: str | os.PathLike,
    images: str | os.PathLike | None = None,
    image_size: int = 224,
    count: int = 4,
    tolerance: float = TOLERANCE,
) -> dict[str, Any]:
    """Compares a kclr model (catalog name, `hf://` or folder) with the authors' SavedModel.

    Args:
        model: what `kclr.zoo.load` accepts.
        reference: the authors' SavedModel folder.
        images: a folder of images (prepared with `kclr.zoo.preprocess`); default:
            `count` generated images of `image_size` pixels.
        image_size: input size.
        count: number of generated images.
        tolerance: largest accepted relative difference.

    Returns:
        `{"outputs": {"features": {"max_abs", "max_rel"}, "logits": ...}, "passed": bool, ...}`.

    Example:

    ```python
    result = kclr.zoo.verify("simclrv2-r50-1x-sk0", "r50_1x_sk0/saved_model")
    print(result["outputs"]["features"]["max_rel"])
    ```
    """
    folder = resolve(model)
    loaded = load_bundle(folder, pins=pins_for(model, folder))
    batch = (
        folder_images(images, image_size)
        if images is not None
        else generated_images(count, image_size)
    )
    return compare_with_saved_model(loaded.bundle, reference, batch, tolerance=tolerance)
