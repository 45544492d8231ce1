"""The projector and predictor MLPs of MoCo v3, as `MoCo._build_mlp` of the authors.

Each layer is a bias-free linear map; every layer but the last is followed by
BatchNorm and ReLU; the last gets a BatchNorm without affine parameters when `last_bn`.
ResNet: projector 2 layers (`in -> 4096 -> 256`, `last_bn=True`), predictor 2 layers
(`256 -> 4096 -> 256`, `last_bn=False`). ViT: projector 3 layers, predictor with the
last BatchNorm. Linear layers are initialised as PyTorch's `nn.Linear` (uniform
`±1/sqrt(fan_in)`); BatchNorm uses PyTorch's epsilon 1e-5 and momentum 0.1 (Keras 0.9).
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="kclr_mocov3")
class MoCoMLP(keras.layers.Layer):
    """MoCo v3's MLP: `num_layers` bias-free Dense layers with BatchNorm (see module doc).

    Args:
        num_layers: linear layers (>= 1).
        hidden_dim: width of the hidden layers (the authors' `mlp_dim`, 4096).
        output_dim: output width (the authors' `dim`, 256); `None`: the input's width
            (the predictor maps back to the projector's width).
        last_bn: a BatchNorm without affine after the last layer.
        sync_bn: synchronise BatchNorm statistics across replicas (the authors'
            SyncBatchNorm under DDP).
    """

    def __init__(
        self,
        num_layers: int = 2,
        hidden_dim: int = 4096,
        output_dim: int | None = 256,
        last_bn: bool = True,
        sync_bn: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_layers) < 1:
            raise ValueError(f"`num_layers` must be >= 1; received {num_layers!r}.")
        self.num_layers = int(num_layers)
        self.hidden_dim = int(hidden_dim)
        self.output_dim = None if output_dim is None else int(output_dim)
        self.last_bn = bool(last_bn)
        self.sync_bn = bool(sync_bn)

    def build(self, input_shape):
        output_dim = self.output_dim or int(input_shape[-1])
        self.stack = []
        width = int(input_shape[-1])
        for index in range(self.num_layers):
            last = index == self.num_layers - 1
            units = output_dim if last else self.hidden_dim
            dense = keras.layers.Dense(
                units,
                use_bias=False,
                kernel_initializer=keras.initializers.VarianceScaling(
                    1.0 / 3.0, "fan_in", "uniform"
                ),
                name=f"linear_{index}",
            )
            dense.build((None, width))
            self.stack.append(dense)
            if not last or self.last_bn:
                affine = not last
                norm = keras.layers.BatchNormalization(
                    momentum=0.9, epsilon=1e-5, center=affine, scale=affine,
                    synchronized=self.sync_bn, name=f"bn_{index}",
                )  # fmt: skip
                norm.build((None, units))
                self.stack.append(norm)
            if not last:
                self.stack.append(keras.layers.ReLU(name=f"relu_{index}"))
            width = units

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.stack:
            if isinstance(layer, keras.layers.BatchNormalization):
                x = layer(x, training=training)
            else:
                x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim or input_shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "hidden_dim": self.hidden_dim,
            "output_dim": self.output_dim,
            "last_bn": self.last_bn,
            "sync_bn": self.sync_bn,
        }
