"""Map the variables of an authors' checkpoint onto kclr's model, by name or by index.

Reference: the released checkpoints of google-research/simclr (SimCLR v1 and v2).

Accepted key forms:

- TF1 names (`base_model/conv2d_7/kernel`, `base_model/batch_normalization_3/gamma`,
  `head_contrastive/nl_0/...`, `head_supervised/...`), optionally with a SimCLRv2 EMA
  copy under `ema_model/`; mapped by creation index (`official_layout`).
- TF2 object paths (`model/resnet_model/block_groups/0/layers/0/...`), what
  `tf.train.Checkpoint(model=model)` writes.
- TF2 SavedModel indices: `model/<sub-model>/variables/<N>` (the sub-model's
  `variables` order) and `trainable_variables_list/<N>` (the whole model's trainable
  variables), as the authors' `build_saved_model` export writes them.

Variables that are not part of the model are skipped and reported by reason:
`global_step` and other bookkeeping, optimizer slots (`Momentum`), buffers such as the
`memory` queue, and the EMA copy that was not selected. Anything else that cannot be
placed is returned as unused (an error at assignment).
"""

from __future__ import annotations

import dataclasses
import re

from kclr.zoo.conversion import official
from kclr.zoo.conversion.official import BN_VARIABLES, Unit

TF2_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_SLOT_WORDS = {"Momentum", "Momentum_1", "Adam", "Adam_1", "LARS", "RMSProp", "RMSProp_1"}
_BUFFER = re.compile(r"^(?:memory|queue)(?:_\w+)?$")
_BOOKKEEPING = {"global_step", "_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter"}

# skip reasons (keys of the report and of metadata.json's `skipped_variables`)
BOOKKEEPING = "bookkeeping"
SLOT = "optimizer_slots"
BUFFER = "buffers"
OTHER_COPY = "unselected_copy"
HEADS = "heads_not_requested"


class ConversionError(ValueError):
    """The checkpoint does not fit the requested architecture."""


class DamagedCheckpointError(ConversionError):
    """A checkpoint's index lists a variable that its data file cannot deliver (truncated)."""


def skip_reason(name: str) -> str | None:
    """Why a variable is not a model variable (`None` when it is one)."""
    parts = name.replace(TF2_SUFFIX, "").split("/")
    if name in _BOOKKEEPING or parts[0] in {"optimizer", "save_counter", "global_step"}:
        return BOOKKEEPING
    if any(p in _SLOT_WORDS for p in parts) or ".OPTIMIZER_SLOT" in name or "beta1_power" in name:
        return SLOT
    if any(_BUFFER.match(p) for p in parts):
        return BUFFER
    return None


@dataclasses.dataclass
class Mapping:
    """target path -> source name, what was skipped (by reason), notes, problems."""

    targets: dict[str, str]
    unused: list[str]
    skipped: dict[str, list[str]]
    duplicates: list[str]
    head_layers: int
    head_dims: tuple[int, int] | None
    num_classes: int | None
    notes: list[str] = dataclasses.field(default_factory=list)
    key_form: str = "tf1"

    def skip(self, reason: str, name: str) -> None:
        self.skipped.setdefault(reason, []).append(name)


def _new(key_form: str) -> Mapping:
    return Mapping({}, [], {}, [], 0, None, None, key_form=key_form)


def _add(mapping: Mapping, target: str, source: str) -> None:
    if target in mapping.targets:
        mapping.duplicates.append(f"{target} <- {mapping.targets[target]} and {source}")
    mapping.targets[target] = source


def _head_targets(mapping: Mapping, head: dict[int, dict[str, str]], shapes) -> None:
    for i, variables in head.items():
        for variable, raw in variables.items():
            layer = f"nl_{i}_dense" if variable == "kernel" else f"nl_{i}_bn"
            _add(mapping, f"projection_head/{layer}/{variable}", raw)
    mapping.head_layers = len(head)
    if head and "kernel" in head.get(0, {}) and "kernel" in head[max(head)]:
        mapping.head_dims = (shapes[head[0]["kernel"]][1], shapes[head[max(head)]["kernel"]][1])


def _sup_targets(mapping: Mapping, sup: dict[str, str], shapes) -> None:
    for variable, raw in sup.items():
        _add(mapping, f"head_supervised/{variable}", raw)
    mapping.num_classes = shapes[sup["kernel"]][1] if "kernel" in sup else None


# ----------------------------------------------------------------------------- TF1 names
_TF1_CONV = re.compile(r"^(?P<scope>(?:.*/)?)conv2d(?:_(?P<i>\d+))?/kernel$")
_TF1_BN = re.compile(r"^(?P<scope>(?:.*/)?)batch_normalization(?:_(?P<i>\d+))?/(?P<v>\w+)$")
_TF1_HEAD = re.compile(
    r"^head_contrastive/nl_(?P<i>\d+)/(?:dense/kernel|batch_normalization/(?P<v>\w+))$"
)
_TF1_SUP = re.compile(r"^head_supervised/linear_layer/dense/(?P<v>kernel|bias)$")


def _tf1_copy(name: str) -> tuple[bool, str]:
    if name.startswith("ema_model/"):
        return True, name[len("ema_model/") :]
    if name.endswith("/ExponentialMovingAverage"):
        return True, name[: -len("/ExponentialMovingAverage")]
    return False, name


@dataclasses.dataclass
class _Tf1Parts:
    convs: dict[int, str] = dataclasses.field(default_factory=dict)
    bns: dict[int, dict[str, str]] = dataclasses.field(default_factory=dict)
    head: dict[int, dict[str, str]] = dataclasses.field(default_factory=dict)
    sup: dict[str, str] = dataclasses.field(default_factory=dict)
    scopes: set[str] = dataclasses.field(default_factory=set)
    unused: list[str] = dataclasses.field(default_factory=list)
    duplicates: list[str] = dataclasses.field(default_factory=list)


def _parse_tf1(names: dict[str, str]) -> _Tf1Parts:
    parts = _Tf1Parts()
    for name, raw in sorted(names.items()):
        if match := _TF1_HEAD.match(name):
            parts.head.setdefault(int(match["i"]), {})[match["v"] or "kernel"] = raw
        elif match := _TF1_SUP.match(name):
            parts.sup[match["v"]] = raw
        elif (match := _TF1_CONV.match(name)) and not name.startswith("head_"):
            parts.scopes.add(match["scope"])
            index = int(match["i"] or 0)
            if index in parts.convs:
                parts.duplicates.append(f"conv2d index {index}: {parts.convs[index]} and {raw}")
            parts.convs[index] = raw
        elif (match := _TF1_BN.match(name)) and not name.startswith("head_"):
            parts.scopes.add(match["scope"])
            parts.bns.setdefault(int(match["i"] or 0), {})[match["v"]] = raw
        else:
            parts.unused.append(raw)
    return parts


def map_tf1(shapes: dict[str, tuple], layout: list[Unit], ema: bool, path: str) -> Mapping:
    """Maps TF1 names by creation index; `ema` selects the `ema_model/` copy."""
    mapping = _new("tf1")
    copies: dict[bool, dict[str, str]] = {False: {}, True: {}}
    for raw in sorted(shapes):
        if reason := skip_reason(raw):
            mapping.skip(reason, raw)
            continue
        is_ema, name = _tf1_copy(raw)
        copies[is_ema][name] = raw
    if ema and not copies[True]:
        raise ConversionError(
            f"ema=True but {path!r} has no EMA copy (no 'ema_model/...' or "
            "'.../ExponentialMovingAverage' variables). SimCLR v1 checkpoints have none; "
            "convert without --ema."
        )
    chosen = _parse_tf1(copies[ema])
    other = _parse_tf1(copies[not ema])
    borrowed: set[str] = set()
    if ema:  # an EMA copy without a head keeps that head's raw weights, and says so
        for part, label in (("head", "head_contrastive"), ("sup", "head_supervised")):
            if not getattr(chosen, part) and getattr(other, part):
                setattr(chosen, part, getattr(other, part))
                values = getattr(other, part).values()
                for item in values:
                    borrowed |= set(item.values()) if isinstance(item, dict) else {item}
                mapping.notes.append(
                    f"ema=True: the checkpoint has no EMA copy of {label}; kept its raw "
                    "(non-EMA) weights for that head."
                )
    for raw in sorted(copies[not ema].values()):
        if raw not in borrowed:
            mapping.skip(OTHER_COPY, raw)
    mapping.unused += chosen.unused
    mapping.duplicates += chosen.duplicates
    if len(chosen.scopes) > 1:
        raise ConversionError(
            f"The checkpoint holds encoder variables under several scopes {sorted(chosen.scopes)}; "
            "kclr expects one encoder (e.g. 'base_model/')."
        )
    conv_units = [u for u in layout if u.kind == "conv"]
    bn_units = [u for u in layout if u.kind == "bn"]
    for units, found, what in (
        (conv_units, chosen.convs, "convolution kernels"),
        (bn_units, chosen.bns, "BatchNorms"),
    ):
        if len(found) != len(units):
            raise ConversionError(
                f"The checkpoint has {len(found)} encoder {what} but the requested "
                f"architecture has {len(units)}. Check --arch (e.g. r50_1x vs r50_1x_sk1 or "
                "r101_1x) against the checkpoint's name."
            )
    for unit, index in zip(conv_units, sorted(chosen.convs), strict=True):
        _add(mapping, f"{unit.layer}/kernel", chosen.convs[index])
    for unit, index in zip(bn_units, sorted(chosen.bns), strict=True):
        for variable, raw in chosen.bns[index].items():
            _add(mapping, f"{unit.layer}/{variable}", raw)
    _head_targets(mapping, chosen.head, shapes)
    _sup_targets(mapping, chosen.sup, shapes)
    return mapping


# ----------------------------------------------------------------------------- TF2 keys
_TF2_HEAD = re.compile(
    r"^_projection_head/linear_layers/(?P<i>\d+)/(?:dense/kernel|bn_relu/bn/(?P<v>\w+))$"
)
_TF2_SUP = re.compile(r"^supervised_head/linear_layer/dense/(?P<v>kernel|bias)$")
_ANCHORS = (f"{official.ENCODER}/", f"{official.HEAD}/", f"{official.SUPERVISED}/")
_INDEXED = re.compile(
    rf"^(?P<sub>{official.ENCODER}|{official.HEAD}|{official.SUPERVISED})/variables/(?P<i>\d+)$"
)
_TRAINABLE = re.compile(r"^(?:.*/)?trainable_variables_list/(?P<i>\d+)$")


def _anchored(name: str) -> str:
    for anchor in _ANCHORS:
        position = name.find(anchor)
        if position == 0 or (position > 0 and name[position - 1] == "/"):
            return name[position:]
    return name


def _collect_tf2(shapes: dict[str, tuple], mapping: Mapping):
    named: dict[str, str] = {}
    indexed: dict[str, dict[int, str]] = {}
    trainable: dict[int, str] = {}
    for raw in sorted(shapes):
        if not raw.endswith(TF2_SUFFIX):
            mapping.skip(BOOKKEEPING, raw)
            continue
        if reason := skip_reason(raw):
            mapping.skip(reason, raw)
            continue
        name = raw[: -len(TF2_SUFFIX)]
        if match := _TRAINABLE.match(name):
            trainable[int(match["i"])] = raw
        elif match := _INDEXED.match(_anchored(name)):
            indexed.setdefault(match["sub"], {})[int(match["i"])] = raw
        else:
            named[_anchored(name)] = raw
    return named, indexed, trainable


def map_tf2(shapes: dict[str, tuple], layout: list[Unit], ema: bool, path: str) -> Mapping:
    """Maps TF2 object paths, sub-model indices and trainable-list indices."""
    if ema:
        raise ConversionError(
            "ema=True is only meaningful for the SimCLRv2 TF1 checkpoints; the TF2 "
            "checkpoints and SavedModels hold one copy of the weights. Convert without --ema."
        )
    mapping = _new("tf2")
    named, indexed, trainable = _collect_tf2(shapes, mapping)
    by_path: dict[str, str] = {}
    for unit in layout:
        variables = ("kernel",) if unit.kind == "conv" else BN_VARIABLES
        for variable in variables:
            by_path[f"{unit.tf2}/{variable}"] = f"{unit.layer}/{variable}"
    head: dict[int, dict[str, str]] = {}
    sup: dict[str, str] = {}
    for name, raw in named.items():
        if name in by_path:
            _add(mapping, by_path[name], raw)
        elif match := _TF2_HEAD.match(name):
            head.setdefault(int(match["i"]), {})[match["v"] or "kernel"] = raw
        elif match := _TF2_SUP.match(name):
            sup[match["v"]] = raw
        else:
            mapping.unused.append(raw)
    _head_targets(mapping, head, shapes)
    _sup_targets(mapping, sup, shapes)
    if indexed or trainable:
        mapping.key_form = "tf2-indexed" if not named else "tf2-mixed"
        _map_indices(mapping, shapes, layout, indexed, trainable)
    return mapping


def _map_indices(mapping, shapes, layout, indexed, trainable) -> None:
    head_layers = mapping.head_layers
    if not head_layers and indexed.get(official.HEAD):
        head_layers = (max(indexed[official.HEAD]) + 2) // 5  # NT statistics come last
    encoder_trainable = sum(t for _, t in official.encoder_variables(layout))
    head_trainable = 3 * head_layers - 1 if head_layers else 0
    supervised = bool(mapping.num_classes) or bool(indexed.get(official.SUPERVISED))
    if trainable and not supervised:
        supervised = len(trainable) - encoder_trainable - head_trainable == 2
    order = official.variable_order(layout, head_layers, supervised)
    for sub, items in indexed.items():
        for index, raw in sorted(items.items()):
            if index < len(order.get(sub, [])):
                _add(mapping, order[sub][index][0], raw)
            else:
                mapping.unused.append(raw)
    flat = official.trainable_order(layout, head_layers, supervised)
    for index, raw in sorted(trainable.items()):
        if index < len(flat):
            _add(mapping, flat[index], raw)
        else:
            mapping.unused.append(raw)
    mapping.head_layers = head_layers
    if head_layers:
        first, last = (
            "projection_head/nl_0_dense/kernel",
            (f"projection_head/nl_{head_layers - 1}_dense/kernel"),
        )
        if first in mapping.targets and last in mapping.targets:
            mapping.head_dims = (
                shapes[mapping.targets[first]][1],
                shapes[mapping.targets[last]][1],
            )
    kernel = mapping.targets.get("head_supervised/kernel")
    mapping.num_classes = shapes[kernel][1] if kernel else None


def summary(mapping: Mapping) -> str:
    """One line naming what was skipped, by reason."""
    labels = {
        BOOKKEEPING: "bookkeeping (global_step, object graph)",
        SLOT: "optimizer slots",
        BUFFER: "buffers (memory/queue)",
        OTHER_COPY: "unselected EMA/raw copy",
        HEADS: "heads not requested",
    }
    total = sum(len(v) for v in mapping.skipped.values())
    if not total:
        return "Skipped no variables."
    order = [*labels, *sorted(set(mapping.skipped) - set(labels))]
    parts = [
        f"{labels.get(k, k)} {len(mapping.skipped[k])}" for k in order if mapping.skipped.get(k)
    ]
    return f"Skipped {total} non-model variables: " + ", ".join(parts) + "."
