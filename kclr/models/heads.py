"""Projection heads (SimCLR v1/v2, SupCon) and the supervised linear head.

Reference: Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020; Chen et al., "Big Self-Supervised Models are Strong
Semi-Supervised Learners", NeurIPS 2020; Khosla et al., "Supervised Contrastive
Learning", NeurIPS 2020. Layout from the authors' `model.py` / `model_util.py`.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from kclr.models.batch_norm import BatchNormalization
from kclr.models.resnet import BN_EPSILON, BN_MOMENTUM
from kclr.registry import heads

VERSIONS = ("v1", "v2", "supcon", "linear", "none")
_NUM_LAYERS = {"v1": 2, "v2": 3}


def _dense_init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=0.01)


@heads.register("projection_head", description="SimCLR v1/v2, SupCon or linear projection head")
class ProjectionHead(layers.Layer):
    """Projection head g(h) returning the list of hidden representations.

    Reference: [Chen et al., 2020](https://arxiv.org/abs/2002.05709) (v1),
    [Chen et al., 2020 (v2)](https://arxiv.org/abs/2006.10029),
    [Khosla et al., 2020](https://arxiv.org/abs/2004.11362) (SupCon).

    Versions:

    - `"v1"`: the SimCLR v1 head, 2 layers; `"v2"`: the SimCLRv2 head, 3 layers. Every
      layer is `Dense(no bias, N(0, 0.01))` + BatchNorm; all but the last are followed
      by ReLU; the last BatchNorm has no beta (`center=False`), as in the authors'
      code (the paper writes `W2 relu(W1 h)` but the code uses BN in every layer).
      Hidden width = input width unless `hidden_dim` is given.
    - `"supcon"`: `Dense(hidden) -> ReLU -> Dense(output_dim)`, with biases and no BN
      (the SupCon reference implementation).
    - `"linear"`: a single `Dense(output_dim, no bias)` + BatchNorm without beta (the
      authors' `proj_head_mode="linear"`).
    - `"none"`: identity.

    The call returns `[h, layer_1_out, ..., projection]` (the authors'
    `hiddens_list`): `[0]` is the input, `[-1]` the projection used by the loss, and
    `[1]` the "middle layer" that SimCLRv2 fine-tunes from.

    Args:
        version: one of `"v1"`, `"v2"`, `"supcon"`, `"linear"`, `"none"`.
        output_dim: projection size (128 in the papers).
        hidden_dim: width of the hidden layers; `None` = input width.
        sync_bn: synchronise BatchNorm across replicas (only with more than one replica).

    Example:

    ```python
    head = kclr.models.ProjectionHead("v2")
    hiddens = head(features)  # [h, nl_0, nl_1, projection]
    projection = hiddens[-1]  # [B, 128]
    ```
    """

    def __init__(
        self,
        version: str = "v2",
        output_dim: int = 128,
        hidden_dim: int | None = None,
        sync_bn: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("name", "projection_head")
        super().__init__(**kwargs)
        if version not in VERSIONS:
            raise ValueError(
                f"Unknown projection head version {version!r}. Expected one of {VERSIONS}."
            )
        self.version = version
        self.output_dim = int(output_dim)
        self.hidden_dim = None if hidden_dim is None else int(hidden_dim)
        self.sync_bn = sync_bn
        self.stages: list[list[layers.Layer]] = []

    def build(self, input_shape) -> None:
        width = self.hidden_dim or input_shape[-1]
        if width is None:
            raise ValueError(
                "ProjectionHead needs a known feature size: received input shape "
                f"{tuple(input_shape)}. Pass hidden_dim=... or call it on fixed-size features."
            )
        stages = _stages(self.version, width, self.output_dim, self.sync_bn)
        shape = tuple(input_shape)
        for stage in stages:
            for layer in stage:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
        self.stages = stages
        self.built = True

    def call(self, inputs, training=None):
        hiddens = [inputs]
        x = inputs
        for stage in self.stages:
            for layer in stage:
                if isinstance(layer, layers.BatchNormalization):
                    x = layer(x, training=training)
                else:
                    x = layer(x)
            hiddens.append(x)
        return hiddens

    def compute_output_shape(self, input_shape):
        shapes = [tuple(input_shape)]
        width = self.hidden_dim or input_shape[-1]
        count = {"v1": 2, "v2": 3, "supcon": 2, "linear": 1, "none": 0}[self.version]
        for i in range(count):
            dim = self.output_dim if i == count - 1 else width
            shapes.append((*input_shape[:-1], dim))
        return shapes

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "version": self.version,
                "output_dim": self.output_dim,
                "hidden_dim": self.hidden_dim,
                "sync_bn": self.sync_bn,
            }
        )
        return config


# ------------------------------------------------------------------- layers per version
def _stages(version: str, width: int, output_dim: int, sync_bn: bool) -> list[list[layers.Layer]]:
    """The layers of a head version, grouped by hidden output (`[]` for `"none"`)."""
    if version in _NUM_LAYERS:
        return _simclr_stages(_NUM_LAYERS[version], width, output_dim, sync_bn)
    if version == "supcon":
        return _supcon_stages(width, output_dim)
    if version == "linear":
        return [[_dense(output_dim, "nl_0_dense"), _batch_norm(False, sync_bn, "nl_0_bn")]]
    return []


def _simclr_stages(
    count: int, width: int, output_dim: int, sync_bn: bool
) -> list[list[layers.Layer]]:
    """SimCLR v1/v2: `count` x (Dense without bias + BatchNorm (+ ReLU but last))."""
    stages = []
    for i in range(count):
        last = i == count - 1
        stage = [
            _dense(output_dim if last else width, f"nl_{i}_dense"),
            _batch_norm(not last, sync_bn, f"nl_{i}_bn"),
        ]
        if not last:
            stage.append(layers.ReLU(name=f"nl_{i}_relu"))
        stages.append(stage)
    return stages


def _supcon_stages(width: int, output_dim: int) -> list[list[layers.Layer]]:
    """SupCon: `Dense(width) -> ReLU -> Dense(output_dim)`, with biases, no BatchNorm."""
    return [
        [
            layers.Dense(width, kernel_initializer=_dense_init(), name="nl_0_dense"),
            layers.ReLU(name="nl_0_relu"),
        ],
        [layers.Dense(output_dim, kernel_initializer=_dense_init(), name="nl_1_dense")],
    ]


def _dense(units: int, name: str) -> layers.Dense:
    return layers.Dense(units, use_bias=False, kernel_initializer=_dense_init(), name=name)


def _batch_norm(center: bool, sync_bn: bool, name: str) -> BatchNormalization:
    return BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, center=center, synchronized=sync_bn, name=name
    )


@heads.register("supervised_head", description="Linear classifier Dense(num_classes)")
def SupervisedHead(  # noqa: N802
    num_classes: int, name: str = "head_supervised", dtype=None
) -> layers.Dense:
    """Linear classifier on top of the features (the authors' `SupervisedHead`).

    A `Dense(num_classes)` with bias and `N(0, 0.01)` kernel initialisation, no BN.

    Args:
        num_classes: number of classes.
        name: layer name.
        dtype: the layer's dtype policy (None: the global one).

    Example:

    ```python
    head = kclr.models.SupervisedHead(1000)
    logits = head(features)
    ```
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; received {num_classes!r}.")
    return layers.Dense(num_classes, kernel_initializer=_dense_init(), name=name, dtype=dtype)
