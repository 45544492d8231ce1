"""The zoo folder format: `config.json`, `model.weights.h5`, `metadata.json`, `README.md`.

`config.json` holds kclr component specs (no Keras class paths, no code), the same
`{"name": <registry name>, "config": {constructor arguments}}` as a run config's
`encoder` and `projection_head` sections (`kclr.spec`):

```json
{"format": "kclr.zoo.model/2",
 "encoder": {"name": "resnet", "config": {"depth": 50, "width_multiplier": 1, ...}},
 "projection_head": {"name": "projection_head", "config": {"version": "v2", ...}},
 "supervised_head": {"name": "supervised_head", "config": {"num_classes": 1000}},
 "preprocessing": {"image_size": 224, "crop_fraction": 0.875, "input": "rgb_float_0_1"}}
```

A head is written as its spec: the registry name and the head's whole `get_config()`
(its constructor arguments), so a plugin head keeps every argument. Loading builds the
models through the registry and reads the weights with `load_weights` (HDF5 arrays only); no pickle, no
Lambda layers, nothing from the folder is executed. Unknown fields are refused.

The file names, the all-or-nothing writing and the sha256 checks live in
`kclr.zoo.folder.files` (its public names are re-exported here).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import pathlib
from collections.abc import Callable
from typing import Any

from kclr import __version__, registry, spec
from kclr.durable import staged_folder
from kclr.zoo.folder.card import render_folder_card
from kclr.zoo.folder.files import (
    CARD_FILE,
    CONFIG_FILE,
    FILES,
    METADATA_FILE,
    WEIGHTS_FILE,
    ZooFormatError,
    check_destination,
    read_json,
    read_metadata,
    sha256_table,
    verify_folder,
    write_json,
)
from kclr.zoo.preprocessing import preprocess

FORMAT = "kclr.zoo.model/2"

CONFIG_KEYS = {"format", "encoder", "projection_head", "supervised_head", "preprocessing"}
LAYER_KEYS = {"name", "trainable", "dtype"}  # Keras's own layer arguments, not the head's
PREPROCESSING_KEYS = {"image_size", "crop_fraction", "input"}
DEFAULT_PREPROCESSING = {"image_size": 224, "crop_fraction": 0.875, "input": "rgb_float_0_1"}
_MAX_CONFIG_BYTES = 1 << 20


# ----------------------------------------------------------------------------- schema
# A serialized Keras object: refused anywhere in a config (nothing is deserialized).
_SERIALIZED_KEYS = {"class_name", "module", "registered_name"}


def _scalar_or_list(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_scalar_or_list(v) for v in value)
    if isinstance(value, dict):  # a plain object of values, e.g. a keras-hub backbone's config
        return not (_SERIALIZED_KEYS & set(value)) and all(
            isinstance(k, str) and _scalar_or_list(v) for k, v in value.items()
        )
    return False


def _check_keys(where: str, data: Any, allowed: set[str], source: str) -> None:
    if not isinstance(data, dict):
        raise ZooFormatError(
            f"{source}: {where} must be an object; received {type(data).__name__}."
        )
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ZooFormatError(
            f"{source}: unknown field(s) {unknown} in {where}; allowed fields: "
            f"{sorted(allowed)}. kclr refuses configs it does not understand instead of "
            "guessing; the folder was written by a newer or a different tool."
        )
    for key, value in data.items():
        if not _scalar_or_list(value):
            raise ZooFormatError(
                f"{source}: field {where}.{key} must be a number, string, boolean, null, "
                "list or plain object of those (not a serialized Keras object); received "
                f"{type(value).__name__}."
            )


def _check_spec(where: str, value: Any, table: Any, source: str) -> dict[str, Any]:
    """Checks a component spec of `config.json` through `kclr.spec.check` (names, arguments)."""
    if not isinstance(value, dict) or set(value) != {"name", "config"}:
        raise ZooFormatError(
            f"{source}: '{where}' must be {{'name': <registered {table.kind}>, 'config': "
            f"{{...}}}}; received {value!r}."
        )
    try:
        checked = spec.check(table, value, where)
    except spec.SpecError as error:
        hint = "" if value["name"] in table else " Install the plugin that provides it."
        raise ZooFormatError(f"{source}: {error}{hint}") from None
    _check_keys(f"{where}.config", checked["config"], set(checked["config"]), source)
    return checked


def validate_config(config: Any, source: str = CONFIG_FILE) -> dict[str, Any]:
    """Checks a zoo `config.json` against kclr's schema; returns the checked specs."""
    if not isinstance(config, dict):
        raise ZooFormatError(f"{source}: expected a JSON object, received {type(config).__name__}.")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise ZooFormatError(
            f"{source}: unknown field(s) {unknown}; allowed fields: {sorted(CONFIG_KEYS)}. "
            "kclr refuses configs it does not understand instead of guessing."
        )
    if config.get("format") != FORMAT:
        raise ZooFormatError(
            f"{source}: format {config.get('format')!r} is not supported; expected {FORMAT!r}."
        )
    out = {"format": FORMAT}
    out["encoder"] = _check_spec("encoder", config.get("encoder"), registry.encoders, source)
    for where in ("projection_head", "supervised_head"):
        head = config.get(where)
        out[where] = None if head is None else _check_spec(where, head, registry.heads, source)
    if config.get("preprocessing") is not None:
        _check_keys("preprocessing", config["preprocessing"], PREPROCESSING_KEYS, source)
    out["preprocessing"] = config.get("preprocessing")
    return out


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Reads and validates `config.json` of a zoo folder."""
    path = pathlib.Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise ZooFormatError(
            f"{os.fspath(directory)!r} is not a kclr zoo folder: {CONFIG_FILE} is missing. "
            "Expected config.json, model.weights.h5 and metadata.json (written by "
            "`kclr.zoo.save` or `kclr zoo convert`)."
        )
    if path.stat().st_size > _MAX_CONFIG_BYTES:
        raise ZooFormatError(f"{os.fspath(path)!r} is too large for a kclr config.")
    return validate_config(read_json(path), source=os.fspath(path))


# ----------------------------------------------------------------------------- building
def bundle(encoder, projection_head=None, supervised_head=None, ft_proj_selector: int = 0):
    """One functional model holding every saved layer (the weight file's layout).

    `ft_proj_selector` (metadata.json, written by the zoo converter for the authors'
    fine-tuned models) picks the projection-head output that feeds the supervised head.
    """
    import keras

    features = encoder.output
    outputs = {"features": features}
    hiddens = [features]
    if projection_head is not None:
        hiddens = projection_head(features)
        outputs["projection"] = hiddens[-1]
    if supervised_head is not None:
        if not 0 <= int(ft_proj_selector) < len(hiddens):
            raise ZooFormatError(
                f"ft_proj_selector={ft_proj_selector} in {METADATA_FILE} does not fit a projection "
                f"head with {len(hiddens) - 1} layers; expected 0 to {len(hiddens) - 1}."
            )
        outputs["logits"] = supervised_head(hiddens[int(ft_proj_selector)])
    return keras.Model(encoder.input, outputs, name="kclr_zoo_bundle")


def build_from_config(config: dict[str, Any]):
    """Builds (encoder, projection_head, supervised_head) from a validated config."""
    encoder_spec = {**config["encoder"], "config": dict(config["encoder"]["config"])}
    if encoder_spec["config"].get("input_shape") is not None:
        encoder_spec["config"]["input_shape"] = tuple(encoder_spec["config"]["input_shape"])
    encoder = registry.encoders.get(encoder_spec)
    heads = [
        None if config.get(where) is None else registry.heads.get(config[where])
        for where in ("projection_head", "supervised_head")
    ]
    return encoder, heads[0], heads[1]


def encoder_spec(encoder) -> dict[str, Any]:
    """`{"name": registry name, "config": constructor args}` for a registered encoder."""
    try:
        return spec.to_spec(registry.encoders, encoder)
    except spec.SpecError:
        raise ZooFormatError(
            f"Cannot save {type(encoder).__name__} in the zoo format: only encoders registered "
            "in `kclr.registry.encoders` as classes (e.g. `kclr.models.ResNet`) can be rebuilt "
            "from kclr's config schema. Register the class, or use `model.save(...)` instead."
        ) from None


def head_spec(head) -> dict[str, Any] | None:
    """The spec of a projection head: its registry name and its whole `get_config()`
    (constructor arguments; Keras's `name`, `trainable` and `dtype` are left out)."""
    if head is None:
        return None
    try:
        found = spec.to_spec(registry.heads, head)
    except spec.SpecError as error:
        raise ZooFormatError(f"Cannot save the projection head: {error}") from None
    config = {k: v for k, v in found["config"].items() if k not in LAYER_KEYS}
    return {"name": found["name"], "config": config}


# ----------------------------------------------------------------------------- save / load
def _preprocessing(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The input contract; small images (<= 32 px) default to no centre crop, as the
    authors evaluate CIFAR."""
    overrides = dict(overrides or {})
    merged = {**DEFAULT_PREPROCESSING, **overrides}
    if "crop_fraction" not in overrides and int(merged["image_size"]) <= 32:
        merged["crop_fraction"] = None
    return merged


def save(
    encoder,
    directory: str | os.PathLike,
    head=None,
    metadata: dict[str, Any] | None = None,
    supervised_head=None,
    card: Callable[[dict[str, Any], dict[str, Any]], str] = render_folder_card,
    preprocessing: dict[str, Any] | None = None,
) -> pathlib.Path:
    """Saves an encoder (and optionally its heads) as a kclr zoo folder.

    Writes `config.json` (kclr's schema), `model.weights.h5`, `metadata.json` (kclr
    version, sha256 of the weight file) and a `README.md` model card. The folder is
    written next to its destination and moved into place at the end, so a failure
    never leaves a half-written folder and an existing folder that is not a kclr zoo
    folder is never overwritten. This is the folder `kclr zoo push` uploads.

    Args:
        encoder: a registered encoder, e.g. `kclr.models.ResNet`.
        directory: destination folder.
        head: optional `kclr.models.ProjectionHead` (called on the encoder output).
        metadata: extra JSON-serialisable fields for `metadata.json` (e.g. dataset,
            metrics, `license`, `datasets`, `tags`).
        supervised_head: optional supervised `Dense` head.
        card: renders the `README.md` model card from the config and the metadata
            (sha256 included); default: the generic card (`kclr.zoo.folder.card`).
        preprocessing: input contract (`image_size`, `crop_fraction`, `input`);
            default 224 px with a 0.875 centre crop (no crop for images of <= 32 px).

    Example:

    ```python
    kclr.zoo.save(encoder, "exports/my-model", head=projection_head)
    encoder = kclr.zoo.load("exports/my-model")
    ```
    """
    directory = pathlib.Path(directory)
    check_destination(directory)
    config = _config(encoder, head, supervised_head, preprocessing)
    json.dumps(metadata or {})  # fail early on non-serialisable metadata
    with staged_folder(directory) as staging:
        bundle(encoder, head, supervised_head).save_weights(staging / WEIGHTS_FILE)
        write_json(staging / CONFIG_FILE, config)
        meta = _metadata(metadata, encoder, staging)
        write_json(staging / METADATA_FILE, meta)
        (staging / CARD_FILE).write_text(card(config, meta), encoding="utf-8")
    return directory


def _config(encoder, head, supervised_head, preprocessing) -> dict[str, Any]:
    """The validated `config.json` of a model to save."""
    supervised_config = None
    if supervised_head is not None:
        supervised_config = {
            "name": "supervised_head",
            "config": {"num_classes": int(supervised_head.units)},
        }
    config = {
        "format": FORMAT,
        "encoder": encoder_spec(encoder),
        "projection_head": head_spec(head),
        "supervised_head": supervised_config,
        "preprocessing": _preprocessing(preprocessing),
    }
    return validate_config(config, source="config")


def _metadata(metadata: dict[str, Any] | None, encoder, staging: pathlib.Path) -> dict[str, Any]:
    """`metadata.json`: the caller's fields, kclr's version and the staged files' sha256."""
    return {
        **(metadata or {}),
        "kclr_version": __version__,
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "feature_dim": int(encoder.output.shape[-1]),
        "sha256": sha256_table(staging),
    }


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A zoo folder's models with their weights read: `bundle` returns the dict of every
    saved output (`features`, `projection`, `logits` as saved). The encoder carries the
    folder's `zoo_config` and its `preprocess` (the input contract)."""

    bundle: Any
    encoder: Any
    projection_head: Any
    supervised_head: Any
    config: dict[str, Any]
    metadata: dict[str, Any]


def load_bundle(directory: str | os.PathLike, pins: dict[str, str | None] | None = None) -> Loaded:
    """Verifies a zoo folder's hashes, builds its models from the schema, reads the weights."""
    directory = pathlib.Path(directory)
    config = read_config(directory)
    meta = verify_folder(directory, pins)
    encoder, head, supervised = build_from_config(config)
    model = bundle(encoder, head, supervised, int(meta.get("ft_proj_selector") or 0))
    model.load_weights(directory / WEIGHTS_FILE)
    encoder.zoo_config = config
    prep = {**DEFAULT_PREPROCESSING, **(config.get("preprocessing") or {})}
    encoder.preprocess = functools.partial(
        preprocess, image_size=int(prep["image_size"]), crop_fraction=prep["crop_fraction"]
    )
    return Loaded(model, encoder, head, supervised, config, meta)


def load_folder(
    directory: str | os.PathLike,
    include_head: bool = False,
    pins: dict[str, str | None] | None = None,
):
    """Loads a zoo folder: verify hashes, build from the schema, read the weights.

    Returns the encoder (images -> features), or with `include_head=True` a model
    returning a dict with `features`, `projection` and (if saved) `logits`. The
    encoder's `preprocess` attribute is `kclr.zoo.preprocess` with the folder's input
    contract (image size, crop fraction).
    """
    loaded = load_bundle(directory, pins)
    return with_head(loaded, directory) if include_head else loaded.encoder


def with_head(loaded, where: Any):
    """The model of `load_folder(include_head=True)` from a `Loaded` (or a
    `kclr.zoo.door.LoadedModel`): images -> `features`, `projection`
    (and `logits` if saved), carrying the folder's `zoo_config` and `preprocess`."""
    import keras

    if loaded.projection_head is None:
        raise ValueError(
            f"include_head=True but {os.fspath(where)!r} has no projection head (the "
            "SimCLR v1 releases ship the encoder only). Use include_head=False."
        )
    encoder = loaded.encoder
    model = keras.Model(loaded.bundle.input, loaded.bundle.output, name=f"{encoder.name}_with_head")
    model.zoo_config = loaded.config
    model.preprocess = encoder.preprocess
    return model


__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "FILES",
    "FORMAT",
    "METADATA_FILE",
    "WEIGHTS_FILE",
    "ZooFormatError",
    "build_from_config",
    "bundle",
    "Loaded",
    "load_bundle",
    "load_folder",
    "read_config",
    "read_metadata",
    "save",
    "with_head",
    "validate_config",
    "verify_folder",
]
