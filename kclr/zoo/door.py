"""The one door for models: every command and function that takes a MODEL opens it here.

`open_model(spec)` accepts what `kclr eval`, `kclr extract`, `kclr export`, `kclr finetune` and
`kclr.zoo.load` accept: a run directory, a zoo folder, a catalog name, `hf://owner/repo[@rev]`,
an https URL of a zoo folder, a fine-tuned classifier file `X.keras` (`kclr finetune --out X`)
or a built `keras.Model`. A zoo model is resolved once (`kclr.zoo.sources.resolve`), its
hashes checked, and its encoder, heads, `config.json` and `metadata.json` loaded once; the
result says what the model is (`output`: `"features"` or `"logits"`) and its input side.

Example:

```python
from kclr.zoo.door import open_model

model = open_model("runs/demo")              # the run's export/ folder
model.encoder, model.projection_head         # images -> features; the head (or None)
model.run_config                             # the `kclr fit` config saved with it (or None)
model.image_size                             # preprocessing.image_size (32 for the demo)
```
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any


class ModelNotFoundError(FileNotFoundError):
    """MODEL looks like a path that does not exist."""


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model opened once.

    Attributes:
        name: what was asked for (a path, a name, a reference).
        model: images `[B, S, S, 3]` (RGB in [0, 1]) -> `output`: the encoder, or a
            fine-tuned classifier.
        output: `"features"` (an encoder) or `"logits"` (a classifier).
        encoder: the kclr encoder (inside `model` for a classifier); a zoo encoder carries
            `zoo_config` and `preprocess` (its input contract).
        projection_head: the saved projection head, or None.
        bundle: a zoo model with every saved output (`features`, `projection`, `logits`),
            or None outside the zoo format.
        folder: the local zoo folder, or None.
        config: the folder's `config.json`, or None.
        metadata: the folder's `metadata.json` (empty outside the zoo format).
        image_size: the model's input side: the folder's `preprocessing.image_size`, else a
            fixed input side, else None.
    """

    name: str
    model: Any
    output: str
    encoder: Any
    projection_head: Any = None
    bundle: Any = None
    folder: pathlib.Path | None = None
    config: dict[str, Any] | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    image_size: int | None = None

    @property
    def run_config(self) -> dict[str, Any] | None:
        """The `kclr fit` configuration saved with the model (`metadata.json`), if any."""
        return self.metadata.get("config") or None


def open_model(spec: Any, quiet: bool = False) -> LoadedModel:
    """Opens MODEL once (see the module docstring for what it accepts).

    Raises:
        ModelNotFoundError: `spec` looks like a path (or an `X.keras` file) that does
            not exist.
        kclr.zoo.catalog.UnknownModelError: `spec` is no path, reference or catalog name
            (the closest names are suggested).
    """
    import keras

    if isinstance(spec, keras.Model):
        return _from_keras(spec, spec.name)
    text = os.fspath(spec)
    path = pathlib.Path(text)
    if text.endswith(".keras"):
        if not path.is_file():
            raise ModelNotFoundError(
                f"MODEL {text!r} does not exist. Expected a fine-tuned classifier file written "
                "by `kclr finetune --out X` (X.keras), a run directory, a zoo folder or a zoo "
                "name (`kclr zoo list`)."
            )
        import kclr.models  # noqa: F401  (registers kclr's layers, so the classifier loads)

        return _from_keras(keras.saving.load_model(text, compile=False), text)
    from kclr.zoo.sources.http import is_url
    from kclr.zoo.sources.hub import HF_PREFIX

    reference = text.startswith(HF_PREFIX) or is_url(text)
    looks_like_path = os.sep in text or text.startswith(".") or (os.altsep or "\0") in text
    if looks_like_path and not reference and not path.exists():
        raise ModelNotFoundError(
            f"MODEL {text!r} does not exist. Expected a run directory, its export/ folder, "
            "a zoo folder, a zoo name (`kclr zoo list`) or a fine-tuned classifier X.keras."
        )
    from kclr.zoo.folder.format import load_bundle
    from kclr.zoo.sources.resolve import pins_for, resolve

    folder = resolve(text, quiet=quiet)
    loaded = load_bundle(folder, pins_for(text, folder))
    size = (loaded.config.get("preprocessing") or {}).get("image_size")
    return LoadedModel(
        name=text, model=loaded.encoder, output="features", encoder=loaded.encoder,
        projection_head=loaded.projection_head, bundle=loaded.bundle, folder=folder,
        config=loaded.config, metadata=loaded.metadata,
        image_size=int(size) if size else _fixed_size(loaded.encoder),
    )  # fmt: skip


def _from_keras(model, name: str) -> LoadedModel:
    """A `keras.Model`: a kclr encoder, or a classifier holding one."""
    from kclr.models import KerasApplicationsEncoder, KerasHubEncoder, ResNet

    encoders = (ResNet, KerasHubEncoder, KerasApplicationsEncoder)
    if isinstance(model, encoders):
        output, encoder = "features", model
    else:
        nested = [layer for layer in model.layers if isinstance(layer, encoders)]
        output, encoder = "logits", (nested[0] if nested else model)
    size = _fixed_size(model) or getattr(encoder, "image_size", None)
    return LoadedModel(
        name=name, model=model, output=output, encoder=encoder,
        image_size=int(size) if size else None,
    )  # fmt: skip


def _fixed_size(model) -> int | None:
    shape = model.input_shape
    return int(shape[1]) if shape[1] is not None and shape[1] == shape[2] else None
