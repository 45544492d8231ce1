"""Convert the authors' SimCLR checkpoints (TF1 checkpoints, TF2 SavedModel variables).

Reference: the released checkpoints of google-research/simclr (SimCLR v1 and v2).

The raw variables are read with `tf.train.load_checkpoint` (no graph, no code from
the checkpoint runs) and assigned into kclr's `ResNet` and heads:

- TF1 names (`base_model/conv2d_7/kernel`, `base_model/batch_normalization_3/gamma`)
  are mapped by creation index: the authors' k-th convolution / BatchNorm is kclr's
  k-th in the same creation order (shortcut first in the first block of a group).
- TF2 object-graph keys (`model/resnet_model/block_groups/0/layers/0/...`, what
  `tf.train.Checkpoint(model=...)` and the SavedModels store) are mapped by path.

Every target variable must be assigned exactly once with the right shape, and every
model variable of the checkpoint must be used; otherwise `ConversionError` lists what
is missing, unused or mis-shaped. Optimizer slots (`Momentum`), `global_step` and,
unless `ema=True` selects them, the SimCLRv2 EMA copies (`ema_model/...`) are skipped.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from kclr.zoo.catalog import arch_code, parse_arch

BN_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")
TF2_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_SLOT_WORDS = {"Momentum", "Momentum_1", "Adam", "Adam_1", "LARS", "RMSProp", "RMSProp_1"}


class ConversionError(ValueError):
    """The checkpoint does not fit the requested architecture."""


@dataclasses.dataclass(frozen=True)
class Unit:
    """One convolution or BatchNorm of the official network, in creation order."""

    kind: str  # "conv" | "bn"
    layer: str  # kclr layer name
    tf2: str  # object path in the authors' TF2 model (below `resnet_model/`)


# ----------------------------------------------------------------------------- layout
def official_layout(depth: int = 50, sk_ratio: float = 0.0, cifar_stem: bool = False) -> list[Unit]:
    """The encoder's convolutions and BatchNorms in the authors' creation order."""
    from kclr.models.resnet import BLOCKS

    kind, blocks = BLOCKS[depth]
    sk = sk_ratio > 0
    stem = "resnet_model/initial_conv_relu_max_pool"
    units: list[Unit] = []
    if sk and not cifar_stem:
        units += [
            Unit("conv", "stem_conv1", f"{stem}/0/conv2d"),
            Unit("bn", "stem_bn1", f"{stem}/1/bn"),
            Unit("conv", "stem_conv2", f"{stem}/2/conv2d"),
            Unit("bn", "stem_bn2", f"{stem}/3/bn"),
            Unit("conv", "stem_conv3", f"{stem}/4/conv2d"),
            Unit("bn", "stem_bn3", f"{stem}/6/bn"),
        ]
    else:
        units += [
            Unit("conv", "stem_conv", f"{stem}/0/conv2d"),
            Unit("bn", "stem_bn", f"{stem}/2/bn"),
        ]
    for group, count in enumerate(blocks, start=1):
        for index in range(count):
            name = f"group{group}_block{index}"
            path = f"resnet_model/block_groups/{group - 1}/layers/{index}"
            if kind == "basic":
                if index == 0:
                    offset = 0 if not sk else (1 if group == 1 else 2)  # ResNet-D: [pad,] pool
                    shortcut = f"{path}/shortcut_layers"
                    units += [
                        Unit("conv", f"{name}_shortcut_conv", f"{shortcut}/{offset}/conv2d"),
                        Unit("bn", f"{name}_shortcut_bn", f"{shortcut}/{offset + 1}/bn"),
                    ]
                layers = f"{path}/conv2d_bn_layers"
                units += [
                    Unit("conv", f"{name}_conv1", f"{layers}/0/conv2d"),
                    Unit("bn", f"{name}_bn1", f"{layers}/1/bn"),
                    Unit("conv", f"{name}_conv2", f"{layers}/2/conv2d"),
                    Unit("bn", f"{name}_bn2", f"{layers}/3/bn"),
                ]
                continue
            if index == 0:
                offset = 0 if not sk else (1 if group == 1 else 2)  # ResNet-D: [pad,] avg-pool
                projection = f"{path}/projection_layers"
                units += [
                    Unit("conv", f"{name}_shortcut_conv", f"{projection}/{offset}/conv2d"),
                    Unit("bn", f"{name}_shortcut_bn", f"{projection}/{offset + 1}/bn"),
                ]
            layers = f"{path}/conv_relu_dropblock_layers"
            units += [
                Unit("conv", f"{name}_conv1", f"{layers}/0/conv2d"),
                Unit("bn", f"{name}_bn1", f"{layers}/1/bn"),
            ]
            if sk:
                units += [
                    Unit("conv", f"{name}_sk_conv", f"{layers}/3/conv2d_fixed_padding/conv2d"),
                    Unit("bn", f"{name}_sk_bn", f"{layers}/3/batch_norm_relu/bn"),
                    Unit("conv", f"{name}_sk_fc1", f"{layers}/3/conv2d_0"),
                    Unit("bn", f"{name}_sk_fc1_bn", f"{layers}/3/batch_norm_relu_1/bn"),
                    Unit("conv", f"{name}_sk_fc2", f"{layers}/3/conv2d_1"),
                    Unit("conv", f"{name}_conv3", f"{layers}/5/conv2d"),
                    Unit("bn", f"{name}_bn3", f"{layers}/6/bn"),
                ]
            else:
                units += [
                    Unit("conv", f"{name}_conv2", f"{layers}/3/conv2d"),
                    Unit("bn", f"{name}_bn2", f"{layers}/4/bn"),
                    Unit("conv", f"{name}_conv3", f"{layers}/6/conv2d"),
                    Unit("bn", f"{name}_bn3", f"{layers}/7/bn"),
                ]
    return units


# ----------------------------------------------------------------------------- reading
@dataclasses.dataclass
class Source:
    """A checkpoint's variables: name -> shape, with a lazy reader."""

    path: str
    shapes: dict[str, tuple[int, ...]]
    read: Callable[[str], np.ndarray]

    @property
    def format(self) -> str:
        return "tf2" if any(TF2_SUFFIX in k for k in self.shapes) else "tf1"


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
    return Source(prefix, shapes, lambda name: np.asarray(reader.get_tensor(name)))


# ----------------------------------------------------------------------------- mapping
def _is_slot_or_bookkeeping(name: str) -> bool:
    parts = name.split("/")
    if name in {"global_step", "_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter"}:
        return True
    if parts[0] in {"optimizer", "save_counter", "global_step"} or name.startswith("save_counter/"):
        return True
    return (
        any(p in _SLOT_WORDS for p in parts) or ".OPTIMIZER_SLOT" in name or "beta1_power" in name
    )


def _tf1_ema(name: str) -> tuple[bool, str]:
    if name.startswith("ema_model/"):
        return True, name[len("ema_model/") :]
    if name.endswith("/ExponentialMovingAverage"):
        return True, name[: -len("/ExponentialMovingAverage")]
    return False, name


_TF1_CONV = re.compile(r"^(?P<scope>(?:.*/)?)conv2d(?:_(?P<i>\d+))?/kernel$")
_TF1_BN = re.compile(r"^(?P<scope>(?:.*/)?)batch_normalization(?:_(?P<i>\d+))?/(?P<v>\w+)$")
_TF1_HEAD = re.compile(
    r"^head_contrastive/nl_(?P<i>\d+)/(?:dense/kernel|batch_normalization/(?P<v>\w+))$"
)
_TF1_SUP = re.compile(r"^head_supervised/linear_layer/dense/(?P<v>kernel|bias)$")
_TF2_HEAD = re.compile(
    r"^_projection_head/linear_layers/(?P<i>\d+)/(?:dense/kernel|bn_relu/bn/(?P<v>\w+))$"
)
_TF2_SUP = re.compile(r"^supervised_head/linear_layer/dense/(?P<v>kernel|bias)$")


@dataclasses.dataclass
class Mapping:
    """target path -> source name, plus what was skipped and what could not be placed."""

    targets: dict[str, str]
    unused: list[str]
    skipped: list[str]
    duplicates: list[str]
    head_layers: int
    head_dims: tuple[int, int] | None
    num_classes: int | None


def _add(mapping: dict[str, str], duplicates: list[str], target: str, source: str) -> None:
    if target in mapping:
        duplicates.append(f"{target} <- {mapping[target]} and {source}")
    mapping[target] = source


def map_tf1(source: Source, layout: list[Unit], ema: bool = False) -> Mapping:
    targets: dict[str, str] = {}
    unused: list[str] = []
    skipped: list[str] = []
    duplicates: list[str] = []
    convs: dict[int, str] = {}
    bns: dict[int, dict[str, str]] = {}
    scopes: set[str] = set()
    head: dict[int, dict[str, str]] = {}
    sup: dict[str, str] = {}
    has_ema = any(_tf1_ema(n)[0] for n in source.shapes)
    if ema and not has_ema:
        raise ConversionError(
            f"ema=True but {source.path!r} has no EMA copy (no 'ema_model/...' or "
            "'.../ExponentialMovingAverage' variables). SimCLR v1 checkpoints have none; "
            "convert without --ema."
        )
    for raw in sorted(source.shapes):
        if _is_slot_or_bookkeeping(raw):
            skipped.append(raw)
            continue
        is_ema, name = _tf1_ema(raw)
        if is_ema != ema:
            skipped.append(raw)
            continue
        if match := _TF1_HEAD.match(name):
            head.setdefault(int(match["i"]), {})[match["v"] or "kernel"] = raw
        elif match := _TF1_SUP.match(name):
            sup[match["v"]] = raw
        elif (match := _TF1_CONV.match(name)) and not name.startswith("head_"):
            scopes.add(match["scope"])
            index = int(match["i"] or 0)
            if index in convs:
                duplicates.append(f"conv2d index {index}: {convs[index]} and {raw}")
            convs[index] = raw
        elif (match := _TF1_BN.match(name)) and not name.startswith("head_"):
            scopes.add(match["scope"])
            bns.setdefault(int(match["i"] or 0), {})[match["v"]] = raw
        else:
            unused.append(raw)
    if len(scopes) > 1:
        raise ConversionError(
            f"The checkpoint holds encoder variables under several scopes {sorted(scopes)}; "
            "kclr expects one encoder (e.g. 'base_model/')."
        )
    conv_units = [u for u in layout if u.kind == "conv"]
    bn_units = [u for u in layout if u.kind == "bn"]
    for units, found, what in (
        (conv_units, convs, "convolution kernels"),
        (bn_units, bns, "BatchNorms"),
    ):
        if len(found) != len(units):
            raise ConversionError(
                f"The checkpoint has {len(found)} encoder {what} but the requested "
                f"architecture has {len(units)}. Check --arch (e.g. r50_1x vs r50_1x_sk1 or "
                "r101_1x) against the checkpoint's name."
            )
    for unit, index in zip(conv_units, sorted(convs), strict=True):
        _add(targets, duplicates, f"{unit.layer}/kernel", convs[index])
    for unit, index in zip(bn_units, sorted(bns), strict=True):
        for variable, raw in bns[index].items():
            _add(targets, duplicates, f"{unit.layer}/{variable}", raw)
    head_dims = None
    for i, variables in head.items():
        for variable, raw in variables.items():
            suffix = "kernel" if variable == "kernel" else variable
            layer = f"nl_{i}_dense" if variable == "kernel" else f"nl_{i}_bn"
            _add(targets, duplicates, f"projection_head/{layer}/{suffix}", raw)
    if head:
        first = source.shapes[head[0]["kernel"]] if "kernel" in head.get(0, {}) else None
        last = source.shapes[head[max(head)]["kernel"]] if "kernel" in head[max(head)] else None
        if first and last:
            head_dims = (first[1], last[1])
    for variable, raw in sup.items():
        _add(targets, duplicates, f"head_supervised/{variable}", raw)
    num_classes = source.shapes[sup["kernel"]][1] if "kernel" in sup else None
    return Mapping(targets, unused, skipped, duplicates, len(head), head_dims, num_classes)


def map_tf2(source: Source, layout: list[Unit], ema: bool = False) -> Mapping:
    if ema:
        raise ConversionError(
            "ema=True is only meaningful for the SimCLRv2 TF1 checkpoints; the TF2 "
            "SavedModels hold one copy of the weights. Convert without --ema."
        )
    by_path: dict[str, str] = {}
    for unit in layout:
        if unit.kind == "conv":
            by_path[f"{unit.tf2}/kernel"] = f"{unit.layer}/kernel"
        else:
            for variable in BN_VARIABLES:
                by_path[f"{unit.tf2}/{variable}"] = f"{unit.layer}/{variable}"
    targets: dict[str, str] = {}
    unused: list[str] = []
    skipped: list[str] = []
    duplicates: list[str] = []
    head: dict[int, dict[str, str]] = {}
    sup: dict[str, str] = {}
    for raw in sorted(source.shapes):
        name = raw[: -len(TF2_SUFFIX)] if raw.endswith(TF2_SUFFIX) else raw
        if _is_slot_or_bookkeeping(name) or not raw.endswith(TF2_SUFFIX):
            skipped.append(raw)
            continue
        for anchor in ("resnet_model/", "_projection_head/", "supervised_head/"):
            position = name.find(anchor)
            if position == 0 or (position > 0 and name[position - 1] == "/"):
                name = name[position:]
                break
        if name in by_path:
            _add(targets, duplicates, by_path[name], raw)
        elif match := _TF2_HEAD.match(name):
            head.setdefault(int(match["i"]), {})[match["v"] or "kernel"] = raw
        elif match := _TF2_SUP.match(name):
            sup[match["v"]] = raw
        else:
            unused.append(raw)
    head_dims = None
    for i, variables in head.items():
        for variable, raw in variables.items():
            layer = f"nl_{i}_dense" if variable == "kernel" else f"nl_{i}_bn"
            _add(targets, duplicates, f"projection_head/{layer}/{variable}", raw)
    if head and "kernel" in head.get(0, {}) and "kernel" in head[max(head)]:
        head_dims = (
            source.shapes[head[0]["kernel"]][1],
            source.shapes[head[max(head)]["kernel"]][1],
        )
    for variable, raw in sup.items():
        _add(targets, duplicates, f"head_supervised/{variable}", raw)
    num_classes = source.shapes[sup["kernel"]][1] if "kernel" in sup else None
    return Mapping(targets, unused, skipped, duplicates, len(head), head_dims, num_classes)


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


def convert(
    checkpoint: str | os.PathLike,
    arch: str | dict[str, Any] = "r50_1x",
    out: str | os.PathLike | None = None,
    ema: bool = False,
    include_heads: bool = True,
    cifar_stem: bool = False,
    metadata: dict[str, Any] | None = None,
    card: str | None = None,
):
    """Converts an authors' checkpoint into kclr's ResNet (and heads).

    Args:
        checkpoint: a TF1 checkpoint prefix or folder, a TF2 SavedModel folder, a
            zip/tar archive of either, or an http(s) URL of one of those files.
        arch: architecture code (`"r50_1x"`, `"r50_2x_sk1"`, ...) or `ResNet` kwargs.
        out: if given, the result is saved there as a kclr zoo folder.
        ema: use the SimCLRv2 EMA copy of the weights instead of the raw ones.
        include_heads: also convert the projection / supervised heads when present.
        cifar_stem: the checkpoint uses the CIFAR stem (3x3, no max-pool).
        metadata: extra fields for `metadata.json`.
        card: model card text for `README.md` (default: generated).

    Returns:
        `(encoder, projection_head, supervised_head)`; heads are None when absent.

    Example:

    ```python
    encoder, head, _ = kclr.zoo.convert("r50_1x_sk0/model.ckpt-250228", "r50_1x",
                                        out="simclrv2-r50-1x")
    ```
    """
    from kclr.models import ProjectionHead, ResNet, SupervisedHead
    from kclr.zoo import download
    from kclr.zoo.io import _bundle, save

    kwargs = parse_arch(arch) if isinstance(arch, str) else dict(arch)
    kwargs["cifar_stem"] = kwargs.get("cifar_stem", cifar_stem)
    with tempfile.TemporaryDirectory(prefix="kclr-convert-") as scratch:
        local = download.materialize(checkpoint, scratch)
        source = open_checkpoint(local)
        layout = official_layout(kwargs["depth"], kwargs.get("sk_ratio", 0.0), kwargs["cifar_stem"])
        mapper = map_tf2 if source.format == "tf2" else map_tf1
        mapping = mapper(source, layout, ema=ema)
        head = supervised = None
        if not include_heads:
            mapping.skipped.extend(
                v
                for k, v in mapping.targets.items()
                if k.startswith(("projection_head/", "head_supervised/"))
            )
            mapping.targets = {
                k: v
                for k, v in mapping.targets.items()
                if not k.startswith(("projection_head/", "head_supervised/"))
            }
            mapping.head_layers = 0
            mapping.num_classes = None
        encoder = ResNet(**kwargs)
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
        if mapping.num_classes:
            supervised = SupervisedHead(int(mapping.num_classes))
        bundle = _bundle(encoder, head, supervised)
        assign(bundle, source, mapping)
        if out is not None:
            meta = {
                "converted_from": {
                    "checkpoint": os.fspath(checkpoint),
                    "format": source.format,
                    "arch": arch_code(**kwargs),
                    "ema": ema,
                    "variables_assigned": len(mapping.targets),
                    "variables_skipped": len(mapping.skipped),
                },
                **(metadata or {}),
            }
            save(encoder, out, head=head, supervised_head=supervised, metadata=meta, card=card)
    return encoder, head, supervised
