"""`kclr.zoo.verify`: compare a zoo model with the authors' SavedModel on the same images.

The model is found through the one resolver (`kclr.zoo.sources.resolve`) and loaded
through the folder format's loader; the comparison itself is `kclr.zoo.conversion.compare`.
"""

from __future__ import annotations

import os
from typing import Any

from kclr.zoo.conversion.compare import (
    TOLERANCE,
    compare_with_saved_model,
    folder_images,
    generated_images,
)
from kclr.zoo.folder.format import load_bundle
from kclr.zoo.sources.resolve import pins_for, resolve


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
