"""The authors' network layout: architecture codes, creation order, TF2 object paths and
variable order.

Reference: google-research/simclr `resnet.py`, `tf2/resnet.py`, `tf2/model.py`.

Three views of the same variables are needed to read every release form:

- `official_layout`: the encoder's convolutions and BatchNorms in creation order (the
  TF1 `conv2d_<k>` / `batch_normalization_<k>` indices follow it), each with its TF2
  object path (`resnet_model/block_groups/0/layers/0/...`, the object checkpoint);
- `variable_order`: the order of a TF2 sub-model's `variables` (Keras: trainable
  variables first, in creation order, then the BatchNorm moving statistics), which
  is what SavedModels exported without named paths index as
  `model/<sub-model>/variables/<N>`;
- `trainable_order`: the whole model's `trainable_variables` (encoder, projection
  head, supervised head), indexed as `trainable_variables_list/<N>`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

BN_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")
ENCODER = "resnet_model"
HEAD = "_projection_head"
SUPERVISED = "supervised_head"

_ARCH_RE = re.compile(r"^r(?P<depth>\d+)_(?P<width>\d+(?:\.\d+)?)x(?:_sk(?P<sk>[01]))?$")


def parse_arch(code: str) -> dict[str, Any]:
    """Parses an architecture code of the authors' release: `r50_1x`, `r50_2x_sk1`, `r152_3x_sk1`.

    Returns `ResNet` keyword arguments (`depth`, `width_multiplier`, `sk_ratio`).
    """
    match = _ARCH_RE.match(code.strip().lower())
    if not match:
        raise ValueError(
            f"Unknown architecture code {code!r}. Expected r<depth>_<width>x[_sk0|_sk1], "
            "e.g. 'r50_1x', 'r50_2x_sk1', 'r152_3x_sk1'."
        )
    width = float(match["width"])
    return {
        "depth": int(match["depth"]),
        "width_multiplier": int(width) if width.is_integer() else width,
        "sk_ratio": 0.0625 if match["sk"] == "1" else 0.0,
    }


def arch_code(depth: int, width_multiplier: float, sk_ratio: float = 0.0, **_: Any) -> str:
    """Inverse of `parse_arch`: `(50, 2, 0.0625)` -> `r50_2x_sk1`."""
    width = int(width_multiplier) if float(width_multiplier).is_integer() else width_multiplier
    return f"r{depth}_{width}x_sk{1 if sk_ratio > 0 else 0}"


@dataclasses.dataclass(frozen=True)
class Unit:
    """One convolution or BatchNorm of the official network, in creation order."""

    kind: str  # "conv" | "bn"
    layer: str  # kclr layer name
    tf2: str  # object path in the authors' TF2 model (below `resnet_model/`)
    late: bool = False  # created first but tracked after its block's residual branch


def _stem(sk: bool, cifar_stem: bool) -> list[Unit]:
    stem = f"{ENCODER}/initial_conv_relu_max_pool"
    if sk and not cifar_stem:
        return [
            Unit("conv", "stem_conv1", f"{stem}/0/conv2d"),
            Unit("bn", "stem_bn1", f"{stem}/1/bn"),
            Unit("conv", "stem_conv2", f"{stem}/2/conv2d"),
            Unit("bn", "stem_bn2", f"{stem}/3/bn"),
            Unit("conv", "stem_conv3", f"{stem}/4/conv2d"),
            Unit("bn", "stem_bn3", f"{stem}/6/bn"),
        ]
    return [Unit("conv", "stem_conv", f"{stem}/0/conv2d"), Unit("bn", "stem_bn", f"{stem}/2/bn")]


def _shortcut(name: str, path: str, sk: bool, group: int, attribute: str) -> list[Unit]:
    offset = 0 if not sk else (1 if group == 1 else 2)  # ResNet-D: [pad,] avg-pool first
    base = f"{path}/{attribute}"
    late = attribute == "shortcut_layers"  # the basic block assigns it after its branch
    return [
        Unit("conv", f"{name}_shortcut_conv", f"{base}/{offset}/conv2d", late),
        Unit("bn", f"{name}_shortcut_bn", f"{base}/{offset + 1}/bn", late),
    ]


def _bottleneck(name: str, path: str, sk: bool) -> list[Unit]:
    layers = f"{path}/conv_relu_dropblock_layers"
    units = [
        Unit("conv", f"{name}_conv1", f"{layers}/0/conv2d"),
        Unit("bn", f"{name}_bn1", f"{layers}/1/bn"),
    ]
    if sk:
        return units + [
            Unit("conv", f"{name}_sk_conv", f"{layers}/3/conv2d_fixed_padding/conv2d"),
            Unit("bn", f"{name}_sk_bn", f"{layers}/3/batch_norm_relu/bn"),
            Unit("conv", f"{name}_sk_fc1", f"{layers}/3/conv2d_0"),
            Unit("bn", f"{name}_sk_fc1_bn", f"{layers}/3/batch_norm_relu_1/bn"),
            Unit("conv", f"{name}_sk_fc2", f"{layers}/3/conv2d_1"),
            Unit("conv", f"{name}_conv3", f"{layers}/5/conv2d"),
            Unit("bn", f"{name}_bn3", f"{layers}/6/bn"),
        ]
    return units + [
        Unit("conv", f"{name}_conv2", f"{layers}/3/conv2d"),
        Unit("bn", f"{name}_bn2", f"{layers}/4/bn"),
        Unit("conv", f"{name}_conv3", f"{layers}/6/conv2d"),
        Unit("bn", f"{name}_bn3", f"{layers}/7/bn"),
    ]


def official_layout(depth: int = 50, sk_ratio: float = 0.0, cifar_stem: bool = False) -> list[Unit]:
    """The encoder's convolutions and BatchNorms in the authors' creation order.

    The projection shortcut of the first block of a group is created before the
    residual branch, so it comes first (TF1 `conv2d_1` is ResNet-50's first shortcut).
    """
    from kclr.models.resnet import BLOCKS

    kind, blocks = BLOCKS[depth]
    sk = sk_ratio > 0
    units = _stem(sk, cifar_stem)
    for group, count in enumerate(blocks, start=1):
        for index in range(count):
            name = f"group{group}_block{index}"
            path = f"{ENCODER}/block_groups/{group - 1}/layers/{index}"
            if kind == "basic":
                if index == 0:
                    units += _shortcut(name, path, sk, group, "shortcut_layers")
                layers = f"{path}/conv2d_bn_layers"
                units += [
                    Unit("conv", f"{name}_conv1", f"{layers}/0/conv2d"),
                    Unit("bn", f"{name}_bn1", f"{layers}/1/bn"),
                    Unit("conv", f"{name}_conv2", f"{layers}/2/conv2d"),
                    Unit("bn", f"{name}_bn2", f"{layers}/3/bn"),
                ]
                continue
            if index == 0:
                units += _shortcut(name, path, sk, group, "projection_layers")
            units += _bottleneck(name, path, sk)
    return units


def head_variables(layers: int) -> list[tuple[str, bool]]:
    """(kclr path, trainable) of the authors' projection head in its `variables` order.

    Per layer the BatchNorm's gamma (and beta, all but the last layer) come before the
    Dense kernel (the order of the authors' `LinearLayer` tracking); the moving
    statistics of every layer follow all trainable variables.
    """
    trainable = []
    for i in range(layers):
        trainable.append(f"projection_head/nl_{i}_bn/gamma")
        if i < layers - 1:
            trainable.append(f"projection_head/nl_{i}_bn/beta")
        trainable.append(f"projection_head/nl_{i}_dense/kernel")
    moving = [f"projection_head/nl_{i}_bn/{v}" for i in range(layers) for v in BN_VARIABLES[2:]]
    return [(p, True) for p in trainable] + [(p, False) for p in moving]


def tracking_order(layout: list[Unit]) -> list[Unit]:
    """The units in Keras tracking order: as created, except that a basic block's
    shortcut (created first) is tracked after the block's residual branch."""
    ordered: list[Unit] = []
    pending: list[Unit] = []
    block = None
    for unit in layout:
        current = "_".join(unit.layer.split("_")[:2])
        if current != block:
            ordered += pending
            pending, block = [], current
        (pending if unit.late else ordered).append(unit)
    return ordered + pending


def encoder_variables(layout: list[Unit]) -> list[tuple[str, bool]]:
    """(kclr path, trainable) of the authors' encoder in its `variables` order.

    Keras lists trainable variables first, in tracking order, then the BatchNorm
    moving statistics in the same order.
    """
    layout = tracking_order(layout)
    trainable = []
    for unit in layout:
        if unit.kind == "conv":
            trainable.append(f"{unit.layer}/kernel")
        else:
            trainable += [f"{unit.layer}/gamma", f"{unit.layer}/beta"]
    moving = [f"{u.layer}/{v}" for u in layout if u.kind == "bn" for v in BN_VARIABLES[2:]]
    return [(p, True) for p in trainable] + [(p, False) for p in moving]


SUPERVISED_VARIABLES = [("head_supervised/kernel", True), ("head_supervised/bias", True)]


def variable_order(
    layout: list[Unit], head_layers: int, supervised: bool
) -> dict[str, list[tuple[str, bool]]]:
    """Each sub-model's `variables` order: `{"resnet_model": [(kclr path, trainable)]}`."""
    order = {ENCODER: encoder_variables(layout)}
    if head_layers:
        order[HEAD] = head_variables(head_layers)
    if supervised:
        order[SUPERVISED] = list(SUPERVISED_VARIABLES)
    return order


def trainable_order(layout: list[Unit], head_layers: int, supervised: bool) -> list[str]:
    """The whole model's `trainable_variables` order (encoder, head, supervised head)."""
    order = variable_order(layout, head_layers, supervised)
    return [path for sub in order.values() for path, trainable in sub if trainable]
