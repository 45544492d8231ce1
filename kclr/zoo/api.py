"""`kclr.zoo.load` / `kclr.zoo.pull`: a name, a Hub repo, a URL or a folder to a model.

`load` opens the model through the one door, `kclr.zoo.door.open_model`; `pull` only
resolves it to a local folder (`kclr.zoo.sources.resolve`).
"""

from __future__ import annotations

import os
import pathlib

from kclr.zoo.door import open_model
from kclr.zoo.folder.format import with_head
from kclr.zoo.sources.resolve import resolve


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
