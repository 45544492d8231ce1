"""What `kclr export MODEL` exports: a kclr encoder's features or a classifier's logits.

MODEL is opened by the one door, `kclr.zoo.door.open_model`; `source` sizes its input.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Source:
    """A model to export.

    Attributes:
        model: kclr's model, images `[B, S, S, 3]` (RGB in [0, 1]) -> `output`.
        output: `"features"` (an encoder) or `"logits"` (a fine-tuned classifier).
        image_size: `S`, the side of the exported input.
        encoder: the kclr encoder inside `model` (the model itself for an encoder).
        name: what MODEL was (a path or a zoo name).
    """

    model: Any
    output: str
    image_size: int
    encoder: Any
    name: str


def source(model: Any, image_size: int | None = None) -> Source:
    """Opens MODEL (anything `kclr.zoo.door.open_model` accepts) for export.

    Args:
        model: a run directory, its `export/` zoo folder, a zoo name or folder, a
            fine-tuned classifier file `X.keras` (`kclr finetune --out X`), or a
            `keras.Model` (an encoder or a classifier: images -> features or logits).
        image_size: the exported input side; default: the zoo folder's
            `preprocessing.image_size`, else the model's fixed input size, else 224 for a
            zoo model.

    Raises:
        FileNotFoundError: `model` looks like a path but does not exist.
        ValueError: `model` is neither a path nor a known zoo name, or a model given
            directly has no fixed input size and no `image_size` is given.
    """
    from kclr.zoo.catalog import UnknownModelError
    from kclr.zoo.door import open_model

    try:
        opened = open_model(model)
    except UnknownModelError as error:
        raise ValueError(
            f"MODEL {str(model)!r} is neither an existing path nor a zoo name: {error.args[0]}"
        ) from None
    size = image_size or opened.image_size or (224 if opened.folder is not None else None)
    if not size:
        raise ValueError(
            f"The input size of {opened.name!r} is not fixed (input shape "
            f"{opened.model.input_shape}); pass --image-size (image_size=...)."
        )
    return Source(opened.model, opened.output, int(size), opened.encoder, opened.name)
