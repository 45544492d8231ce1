"""`kclr.zoo.load` / `kclr.zoo.pull`: a name, a Hub repo, a URL or a folder to a model.

Both go through the one resolver, `kclr.zoo.sources.resolve`.
"""

from __future__ import annotations

import os
import pathlib

from kclr.zoo.folder.format import load_folder
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
            `"hf://owner/repo[@revision]"`, an https URL of a zoo folder, or a local zoo
            folder / run directory.
        include_head: return a model whose output is a dict with `features`,
            `projection` (and `logits` if the checkpoint has a supervised head).

    Returns:
        A Keras model. Prepare inputs with `kclr.zoo.preprocess`.

    Loading is safe by construction: only kclr's config schema and HDF5 weight arrays
    are read, the sha256 of the weights is checked against the pinned value and the
    folder's metadata, and nothing from a download is executed.

    Example:

    ```python
    encoder = kclr.zoo.load("simclr-r50-1x")
    features = encoder(kclr.zoo.preprocess(images))  # [B, 2048]
    ```
    """
    folder = resolve(spec)
    return load_folder(folder, include_head=include_head, pins=pins_for(spec, folder))
