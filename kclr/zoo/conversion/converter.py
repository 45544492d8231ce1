"""Convert the authors' SimCLR checkpoints (TF1 checkpoints, TF2 checkpoints, SavedModels).

Reference: the released checkpoints of google-research/simclr (SimCLR v1 and v2).

The raw variables are read with `tf.train.load_checkpoint` (no graph, no code from
the checkpoint runs) and assigned into kclr's `ResNet` and heads; `kclr.zoo.conversion.mapping`
places them (TF1 names by creation index, TF2 object paths by path, SavedModel
`variables/<N>` and `trainable_variables_list/<N>` by the authors' variable order).

Every target variable must be assigned exactly once with the right shape, and every
model variable of the checkpoint must be used; otherwise `ConversionError` lists what
is missing, unused or mis-shaped. Non-model variables (`global_step`, optimizer slots,
`memory` buffers, the EMA copy not selected) are skipped and listed in the result and
in the converted folder's `metadata.json`. When the source is a SavedModel, the
converted model is compared with the authors' own forward pass (`kclr.zoo.conversion.compare`).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from kclr.zoo.conversion import compare
from kclr.zoo.conversion.mapping import (
    HEADS,
    TF2_SUFFIX,
    ConversionError,
    DamagedCheckpointError,
    Mapping,
    map_tf1,
    map_tf2,
    summary,
)
from kclr.zoo.conversion.official import Unit, arch_code, official_layout, parse_arch
from kclr.zoo.folder import format as io
from kclr.zoo.folder.card import render_folder_card
from kclr.zoo.folder.safety import safe_extract

__all__ = [
    "ConversionError",
    "Converted",
    "DamagedCheckpointError",
    "Unit",
    "convert",
    "official_layout",
    "open_checkpoint",
]


# ----------------------------------------------------------------------------- reading
@dataclasses.dataclass
class Source:
    """A checkpoint's variables: name -> shape, with a lazy reader."""

    path: str
    shapes: dict[str, tuple[int, ...]]
    read: Callable[[str], np.ndarray]
    saved_model: str | None = None  # the SavedModel folder, when the source is one

    @property
    def format(self) -> str:
        return "tf2" if any(TF2_SUFFIX in k for k in self.shapes) else "tf1"


def _is_url(spec: str | os.PathLike) -> bool:
    return isinstance(spec, str) and spec.split("://", 1)[0] in {"http", "https"}


def local_checkpoint(
    spec: str | os.PathLike,
    scratch: str | os.PathLike,
    download: Callable[[str, pathlib.Path], os.PathLike] | None = None,
) -> str:
    """A local path a checkpoint reader can open, from a path, an archive or an http(s) URL.

    An archive is extracted into `scratch` (`kclr.zoo.folder.safety.safe_extract`); a URL is
    fetched into `scratch/download` with `download(url, folder)`, which the caller supplies
    (`kclr.zoo.convert` passes kclr's HTTP downloader), so conversion never reaches for
    the network on its own.
    """
    scratch = pathlib.Path(scratch)
    if _is_url(spec):
        if download is None:
            raise ConversionError(
                f"{spec!r} is a URL; convert it with `kclr.zoo.convert` (which downloads it), "
                "or download it first and pass the local file."
            )
        path = pathlib.Path(download(str(spec), scratch / "download"))
    else:
        path = pathlib.Path(spec)
    if path.is_file() and (zipfile.is_zipfile(path) or tarfile.is_tarfile(path)):
        return os.fspath(safe_extract(path, scratch / "extracted"))
    if not path.exists() and not pathlib.Path(f"{path}.index").exists():
        raise FileNotFoundError(
            f"Checkpoint {os.fspath(spec)!r} does not exist. Pass a checkpoint prefix, a folder, "
            "a SavedModel folder, an archive or an http(s) URL."
        )
    return os.fspath(path)


def find_checkpoint(path: str | os.PathLike) -> str:
    """Resolves a checkpoint prefix from a prefix, a folder or a SavedModel folder."""
    path = pathlib.Path(path)
    if path.is_file() and path.suffix == ".index":
        return os.fspath(path.with_suffix(""))
    if pathlib.Path(f"{path}.index").exists():
        return os.fspath(path)
    if path.is_dir():
        saved_model = path / "variables" / "variables.index"
        indexes = sorted(path.rglob("*.index"))
        ckpts = [p for p in indexes if re.fullmatch(r"model\.ckpt-\d+", p.stem)]
        if ckpts:
            best = max(ckpts, key=lambda p: (int(p.stem.rsplit("-", 1)[1]), -len(p.parts)))
            return os.fspath(best.with_suffix(""))
        if saved_model.exists():
            return os.fspath(saved_model.with_suffix(""))
        if len(indexes) == 1:
            return os.fspath(indexes[0].with_suffix(""))
        if indexes:
            found = ", ".join(os.fspath(p) for p in indexes[:5])
            raise ConversionError(
                f"{os.fspath(path)!r} holds several checkpoints ({found}); pass the prefix of "
                "the one to convert (e.g. DIR/model.ckpt-250228)."
            )
    raise ConversionError(
        f"No checkpoint found at {os.fspath(path)!r}. Expected a TF1 checkpoint prefix "
        "(model.ckpt-N with .index and .data files), a folder holding one, a TF2 SavedModel "
        "folder (saved_model.pb + variables/), a .zip/.tar archive of those, or a URL."
    )


def open_checkpoint(path: str | os.PathLike) -> Source:
    """Opens a checkpoint for reading (raw variables only, nothing is executed)."""
    import tensorflow as tf

    prefix = find_checkpoint(path)
    reader = tf.train.load_checkpoint(prefix)
    shapes = {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items()}
    folder = pathlib.Path(prefix).parent.parent
    saved_model = (
        os.fspath(folder)
        if pathlib.Path(prefix).name == "variables" and (folder / "saved_model.pb").is_file()
        else None
    )

    def read(name: str) -> np.ndarray:
        try:
            return np.asarray(reader.get_tensor(name))
        except (IndexError, tf.errors.OpError) as error:  # TF's words for a short data file
            raise DamagedCheckpointError(
                f"Cannot read {name!r} from the checkpoint {prefix!r} ({error}): its data file "
                "is truncated or damaged. Download it again, or pass an intact copy."
            ) from error

    return Source(prefix, shapes, read, saved_model)


# ----------------------------------------------------------------------------- convert
def _variable_key(variable) -> str:
    path = variable.path
    return path.split("/", 1)[1] if path.startswith("kclr_zoo_bundle/") else path


def assign(bundle, source: Source, mapping: Mapping) -> dict[str, str]:
    """Assigns mapped arrays into `bundle`'s variables; every variable exactly once."""
    variables = {_variable_key(v): v for v in bundle.weights}
    missing = sorted(set(variables) - set(mapping.targets))
    extra = sorted(set(mapping.targets) - set(variables))
    mismatched = []
    for key, raw in mapping.targets.items():
        if key in variables and tuple(variables[key].shape) != tuple(source.shapes[raw]):
            mismatched.append(
                f"{key}: model {tuple(variables[key].shape)} vs checkpoint {raw} "
                f"{tuple(source.shapes[raw])}"
            )
    unused = mapping.unused + [mapping.targets[k] for k in extra]
    if missing or unused or mismatched or mapping.duplicates:
        lines = []
        if missing:
            lines.append(
                f"missing (no checkpoint value) [{len(missing)}]: " + ", ".join(missing[:20])
            )
        if unused:
            lines.append(
                f"unused checkpoint variables [{len(unused)}]: " + ", ".join(sorted(unused)[:20])
            )
        if mismatched:
            lines.append(f"shape mismatches [{len(mismatched)}]: " + "; ".join(mismatched[:10]))
        if mapping.duplicates:
            lines.append("assigned twice: " + "; ".join(mapping.duplicates[:10]))
        raise ConversionError(
            f"Cannot convert {source.path!r} into the requested model:\n- "
            + "\n- ".join(lines)
            + "\nCheck --arch (depth, width, sk) and whether the checkpoint is the authors'."
        )
    for key, variable in variables.items():
        value = source.read(mapping.targets[key]).astype(variable.dtype)
        variable.assign(value)
    return {key: mapping.targets[key] for key in variables}


class Converted(tuple):
    """`(encoder, projection_head, supervised_head)` with a `report` dict attached.

    `report` holds `skipped` (reason -> names), `summary` (one line), `notes`,
    `key_form` and, for SavedModels, `verification` (see `kclr.zoo.conversion.compare`).
    """

    report: dict[str, Any]

    def __new__(cls, encoder, head, supervised, report: dict[str, Any]):
        obj = super().__new__(cls, (encoder, head, supervised))
        obj.report = report
        return obj


def _drop_heads(mapping: Mapping) -> None:
    for key, raw in list(mapping.targets.items()):
        if key.startswith(("projection_head/", "head_supervised/")):
            mapping.skip(HEADS, raw)
            del mapping.targets[key]
    mapping.head_layers = 0
    mapping.num_classes = None


def _build(kwargs: dict[str, Any], mapping: Mapping, ft_proj_selector: int):
    from kclr.models import ProjectionHead, ResNet, SupervisedHead

    encoder = ResNet(**kwargs)
    head = supervised = None
    if mapping.head_layers:
        if mapping.head_layers not in (2, 3):
            raise ConversionError(
                f"The checkpoint's projection head has {mapping.head_layers} layers; kclr "
                "supports the 2-layer (v1) and 3-layer (v2) heads."
            )
        hidden, output = mapping.head_dims or (None, 128)
        head = ProjectionHead(
            "v2" if mapping.head_layers == 3 else "v1",
            output_dim=output,
            hidden_dim=None if hidden == encoder.output.shape[-1] else hidden,
        )
    if ft_proj_selector and head is None:
        raise ConversionError(
            f"ft_proj_selector={ft_proj_selector} puts the supervised head on a projection-head "
            "layer, but the checkpoint has no projection head. Use ft_proj_selector=0."
        )
    if mapping.num_classes:
        supervised = SupervisedHead(int(mapping.num_classes))
    bundle = io.bundle(encoder, head, supervised, ft_proj_selector=ft_proj_selector)
    return encoder, head, supervised, bundle


def _verify(bundle, saved_model, images, checkpoint) -> dict[str, Any]:

    if not saved_model:
        raise ConversionError(
            f"verify=True needs the authors' SavedModel (saved_model.pb): "
            f"{os.fspath(checkpoint)!r} is a plain checkpoint; pass reference=DIR."
        )
    result = compare.compare_with_saved_model(bundle, saved_model, images=images)
    result["reference"] = os.fspath(saved_model)
    if not result["passed"]:
        raise ConversionError(
            "The converted model differs from the authors' SavedModel: "
            + compare.describe(result)
            + ". Check --arch, --cifar-stem and --ft-proj-selector."
        )
    return result


def _metadata(checkpoint, source, mapping, kwargs, ema, ft_proj_selector, report):
    meta: dict[str, Any] = {
        "converted_from": {
            "checkpoint": os.fspath(checkpoint),
            "format": source.format,
            "key_form": mapping.key_form,
            "arch": arch_code(**kwargs),
            "ema": ema,
            "ft_proj_selector": ft_proj_selector,
            "variables_assigned": len(mapping.targets),
            "variables_skipped": sum(len(v) for v in mapping.skipped.values()),
            "skipped_variables": mapping.skipped,
            "notes": mapping.notes,
            "verification": report["verification"],
        }
    }
    if ft_proj_selector:
        meta["ft_proj_selector"] = ft_proj_selector  # read by `kclr.zoo.folder.format` when loading
    return meta


def convert(
    checkpoint: str | os.PathLike,
    arch: str | dict[str, Any] = "r50_1x",
    out: str | os.PathLike | None = None,
    ema: bool = False,
    include_heads: bool = True,
    cifar_stem: bool = False,
    metadata: dict[str, Any] | None = None,
    card: Callable[[dict[str, Any], dict[str, Any]], str] = render_folder_card,
    ft_proj_selector: int = 0,
    verify: bool | None = None,
    reference: str | os.PathLike | None = None,
    verify_images: Any = None,
    download: Callable[[str, pathlib.Path], os.PathLike] | None = None,
) -> Converted:
    """Converts an authors' checkpoint into kclr's ResNet (and heads).

    Args:
        checkpoint: a TF1 checkpoint prefix or folder, a TF2 checkpoint, a TF2
            SavedModel folder, a zip/tar archive of one, or an http(s) URL of one.
        arch: architecture code (`"r50_1x"`, `"r50_2x_sk1"`, ...) or `ResNet` kwargs.
        out: if given, the result is saved there as a kclr zoo folder.
        ema: use the SimCLRv2 EMA copy of the weights instead of the raw ones (a head
            without an EMA copy keeps its raw weights; the report says so).
        include_heads: also convert the projection / supervised heads when present.
        cifar_stem: the checkpoint uses the CIFAR stem (3x3, no max-pool).
        metadata: extra fields for `metadata.json`.
        card: renders `README.md` from the folder's config and metadata (default: the
            generic card; the resolver passes the catalog's card for a catalog model).
        ft_proj_selector: which projection-head output feeds the supervised head (the
            authors' flag: 0 = the encoder features, 1 = the first head layer, as in
            SimCLRv2's fine-tuning from the middle of the head).
        verify: compare with the authors' SavedModel forward pass (`kclr.zoo.conversion.compare`)
            and refuse a difference above 1e-4; default: when a SavedModel is at hand
            (the source itself, or `reference`).
        reference: the authors' SavedModel folder to verify against (e.g. when the
            source is the TF1 checkpoint of the same model).
        verify_images: images for that comparison (default: generated, 224 px).
        download: `download(url, folder) -> path` for an http(s) `checkpoint`
            (`kclr.zoo.convert` passes kclr's HTTP downloader; see `local_checkpoint`).

    Returns:
        A `Converted` tuple `(encoder, projection_head, supervised_head)` (heads None
        when absent) with a `report` attribute.

    Example:

    ```python
    encoder, head, _ = kclr.zoo.convert("r50_1x_sk0/model.ckpt-250228", "r50_1x",
                                        out="simclrv2-r50-1x")
    ```
    """
    kwargs = parse_arch(arch) if isinstance(arch, str) else dict(arch)
    kwargs["cifar_stem"] = kwargs.get("cifar_stem", cifar_stem)
    with tempfile.TemporaryDirectory(prefix="kclr-convert-") as scratch:
        local = local_checkpoint(checkpoint, scratch, download)
        source = open_checkpoint(local)
        layout = official_layout(kwargs["depth"], kwargs.get("sk_ratio", 0.0), kwargs["cifar_stem"])
        mapper = map_tf2 if source.format == "tf2" else map_tf1
        mapping = mapper(source.shapes, layout, ema, source.path)
        if not include_heads:
            _drop_heads(mapping)
        encoder, head, supervised, bundle = _build(kwargs, mapping, ft_proj_selector)
        assign(bundle, source, mapping)
        saved_model = os.fspath(reference) if reference is not None else source.saved_model
        verification = None
        if verify or (verify is None and saved_model):
            verification = _verify(bundle, saved_model, verify_images, checkpoint)
        report = {
            "key_form": mapping.key_form,
            "skipped": mapping.skipped,
            "summary": summary(mapping),
            "notes": mapping.notes,
            "verification": verification,
        }
        if out is not None:
            meta = _metadata(checkpoint, source, mapping, kwargs, ema, ft_proj_selector, report)
            io.save(
                encoder,
                out,
                head=head,
                supervised_head=supervised,
                metadata={**meta, **(metadata or {})},
                card=card,
            )
    return Converted(encoder, head, supervised, report)
