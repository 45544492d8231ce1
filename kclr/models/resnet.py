"""ResNet encoders as in SimCLR (post-activation ResNet v1, optional SK + ResNet-D).

Reference: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016;
Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations" (SimCLR), ICML 2020; Chen et al., "Big Self-Supervised Models are
Strong Semi-Supervised Learners" (SimCLRv2), NeurIPS 2020.

The network follows the authors' `resnet.py` (TF1 and TF2) detail by detail so that
their released checkpoints load exactly:

- the stride of a bottleneck sits on its 3x3 convolution;
- the first block of every group has a projection shortcut (1x1 conv + BN), created
  before the residual branch (the authors' creation order);
- the last BatchNorm of each residual branch starts with gamma = 0;
- BatchNorm momentum 0.9, epsilon 1e-5; conv kernels use `VarianceScaling()` defaults
  (truncated normal, fan-in, scale 1) and have no bias;
- a strided convolution pads symmetrically (`ZeroPadding2D` then `"valid"`), unlike
  Keras `padding="same"`, which pads more at the bottom/right;
- with `sk_ratio > 0`, the SimCLRv2 selective-kernel convolution replaces the 3x3
  convolution and the ResNet-D stem and shortcut are used.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from kclr.models.batch_norm import BatchNormalization
from kclr.registry import encoders

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# depth -> (block kind, blocks per group)
BLOCKS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}
GROUP_FILTERS = (64, 128, 256, 512)
GROUP_STRIDES = (1, 2, 2, 2)
SK_MIN_DIM = 32


def scaled_filters(filters: int, width_multiplier: float) -> int:
    """Number of channels of a layer with `filters` channels at width 1."""
    return max(1, int(round(filters * width_multiplier)))


def feature_dim(depth: int = 50, width_multiplier: float = 1) -> int:
    """Size of the pooled features of `ResNet(depth, width_multiplier)`."""
    kind, _ = _blocks(depth)
    expansion = 4 if kind == "bottleneck" else 1
    return expansion * scaled_filters(512, width_multiplier)


def _blocks(depth: int) -> tuple[str, tuple[int, int, int, int]]:
    if depth not in BLOCKS:
        raise ValueError(f"Unsupported ResNet depth {depth!r}. Expected one of {sorted(BLOCKS)}.")
    return BLOCKS[depth]


# ----------------------------------------------------------------------------- blocks
@keras.saving.register_keras_serializable(package="kclr")
class Conv2D(layers.Conv2D):
    """`keras.layers.Conv2D`, computed as one matrix product on a 1x1 feature map.

    A stride-1 `"same"` convolution with an odd kernel sees only zero padding outside a
    1x1 input, so its output is the input times the kernel's centre tap: the same
    function, values and gradients (the other taps' gradients are zero either way), up
    to the order of float additions. On small images the last group of a ResNet runs
    on 1x1 maps (32 px with the ImageNet stem), where TensorFlow's CPU convolution
    kernels, and their gradients most of all, take tens of times longer than the matrix
    product (`benchmarks/profile_step.py`). Everywhere else it is `Conv2D` itself; the
    variables are the same (same names, same checkpoints).
    """

    def call(self, inputs):
        if not self._centre_tap_only(inputs.shape):
            return super().call(inputs)
        row, col = ((k - 1) // 2 for k in self.kernel_size)
        kernel = self.kernel[row, col]  # [in, out]
        outputs = ops.matmul(ops.reshape(inputs, (-1, inputs.shape[-1])), kernel)
        if self.use_bias:
            outputs = outputs + self.bias
        outputs = ops.reshape(outputs, (-1, 1, 1, self.filters))
        return outputs if self.activation is None else self.activation(outputs)

    def _centre_tap_only(self, shape) -> bool:
        return (
            len(shape) == 4
            and tuple(shape[1:3]) == (1, 1)
            and self.padding == "same"
            and tuple(self.strides) == (1, 1)
            and tuple(self.dilation_rate) == (1, 1)
            and self.groups == 1
            and self.data_format == "channels_last"
            and all(k % 2 == 1 for k in self.kernel_size)
        )


def conv(x, filters: int, kernel_size: int, strides: int, name: str):
    """Conv2D with the authors' fixed padding (`Conv2dFixedPadding`)."""
    if strides > 1 and kernel_size > 1:
        pad_beg = (kernel_size - 1) // 2
        pad_end = kernel_size - 1 - pad_beg
        x = layers.ZeroPadding2D(((pad_beg, pad_end), (pad_beg, pad_end)), name=f"{name}_pad")(x)
    return Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same" if strides == 1 else "valid",
        use_bias=False,
        kernel_initializer=keras.initializers.VarianceScaling(),
        name=name,
    )(x)


def batch_norm(x, name: str, sync_bn: bool, relu: bool = True, zero_init: bool = False):
    """BatchNorm (momentum 0.9, epsilon 1e-5) optionally followed by ReLU."""
    x = BatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer="zeros" if zero_init else "ones",
        synchronized=sync_bn,
        name=name,
    )(x)
    if relu:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


@keras.saving.register_keras_serializable(package="kclr")
class SKSqueeze(layers.Layer):
    """Global context of the two SK streams: `mean_hw(stream_a + stream_b)`.

    Input `[B, H, W, 2C]` (two streams stacked on channels), output `[B, 1, 1, C]`.
    """

    def call(self, inputs):
        stream_a, stream_b = ops.split(inputs, 2, axis=-1)
        return ops.mean(stream_a + stream_b, axis=(1, 2), keepdims=True)

    def compute_output_shape(self, input_shape):
        channels = None if input_shape[-1] is None else input_shape[-1] // 2
        return (input_shape[0], 1, 1, channels)


@keras.saving.register_keras_serializable(package="kclr")
class SKMix(layers.Layer):
    """Softmax-weighted sum of the two SK streams.

    Inputs: streams `[B, H, W, 2C]` and mixing logits `[B, 1, 1, 2C]`; output `[B, H, W, C]`.
    """

    def call(self, inputs):
        streams, logits = inputs
        stream_a, stream_b = ops.split(streams, 2, axis=-1)
        logit_a, logit_b = ops.split(logits, 2, axis=-1)
        weights = ops.softmax(ops.stack([logit_a, logit_b], axis=0), axis=0)
        return weights[0] * stream_a + weights[1] * stream_b

    def compute_output_shape(self, input_shapes):
        shape = input_shapes[0]
        channels = None if shape[-1] is None else shape[-1] // 2
        return (*shape[:-1], channels)


def sk_conv(x, filters: int, strides: int, sk_ratio: float, name: str, sync_bn: bool):
    """SimCLRv2 selective-kernel 3x3 convolution (`SK_Conv2D`)."""
    streams = conv(x, 2 * filters, 3, strides, name=f"{name}_conv")
    streams = batch_norm(streams, f"{name}_bn", sync_bn)
    context = SKSqueeze(name=f"{name}_squeeze")(streams)
    mid = max(int(filters * sk_ratio), SK_MIN_DIM)
    context = conv(context, mid, 1, 1, name=f"{name}_fc1")
    context = batch_norm(context, f"{name}_fc1_bn", sync_bn)
    logits = conv(context, 2 * filters, 1, 1, name=f"{name}_fc2")
    return SKMix(name=f"{name}_mix")([streams, logits])


def shortcut(x, filters: int, strides: int, name: str, sync_bn: bool, sk_ratio: float):
    """Projection shortcut (ResNet-D average-pool variant when `sk_ratio > 0`)."""
    if sk_ratio > 0:
        if strides > 1:
            x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad")(x)
        x = layers.AveragePooling2D(
            2, strides, padding="same" if strides == 1 else "valid", name=f"{name}_pool"
        )(x)
        x = conv(x, filters, 1, 1, name=f"{name}_conv")
    else:
        x = conv(x, filters, 1, strides, name=f"{name}_conv")
    return batch_norm(x, f"{name}_bn", sync_bn, relu=False)


def bottleneck_block(x, filters, strides, projection, name, sync_bn, sk_ratio=0.0):
    """1x1 -> 3x3 (strided) -> 1x1 (4 * filters) bottleneck, post-activation."""
    skip = x
    if projection:
        skip = shortcut(x, 4 * filters, strides, f"{name}_shortcut", sync_bn, sk_ratio)
    x = conv(x, filters, 1, 1, name=f"{name}_conv1")
    x = batch_norm(x, f"{name}_bn1", sync_bn)
    if sk_ratio > 0:
        x = sk_conv(x, filters, strides, sk_ratio, f"{name}_sk", sync_bn)
    else:
        x = conv(x, filters, 3, strides, name=f"{name}_conv2")
        x = batch_norm(x, f"{name}_bn2", sync_bn)
    x = conv(x, 4 * filters, 1, 1, name=f"{name}_conv3")
    x = batch_norm(x, f"{name}_bn3", sync_bn, relu=False, zero_init=True)
    x = layers.Add(name=f"{name}_add")([x, skip])
    return layers.ReLU(name=f"{name}_out")(x)


def basic_block(x, filters, strides, projection, name, sync_bn, sk_ratio=0.0):
    """3x3 (strided) -> 3x3 residual block, post-activation (ResNet-18/34).

    As in the authors' code, `sk_ratio > 0` only switches the shortcut to ResNet-D here;
    selective kernels exist in bottlenecks only.
    """
    skip = x
    if projection:
        skip = shortcut(x, filters, strides, f"{name}_shortcut", sync_bn, sk_ratio)
    x = conv(x, filters, 3, strides, name=f"{name}_conv1")
    x = batch_norm(x, f"{name}_bn1", sync_bn)
    x = conv(x, filters, 3, 1, name=f"{name}_conv2")
    x = batch_norm(x, f"{name}_bn2", sync_bn, relu=False, zero_init=True)
    x = layers.Add(name=f"{name}_add")([x, skip])
    return layers.ReLU(name=f"{name}_out")(x)


def stem(x, width_multiplier, cifar_stem, sk_ratio, sync_bn):
    """ImageNet stem (7x7/2 conv + 3x3/2 max-pool), ResNet-D stem, or CIFAR stem."""
    if cifar_stem:
        x = conv(x, scaled_filters(64, width_multiplier), 3, 1, name="stem_conv")
        return batch_norm(x, "stem_bn", sync_bn)
    if sk_ratio > 0:
        half = scaled_filters(32, width_multiplier)
        x = conv(x, half, 3, 2, name="stem_conv1")
        x = batch_norm(x, "stem_bn1", sync_bn)
        x = conv(x, half, 3, 1, name="stem_conv2")
        x = batch_norm(x, "stem_bn2", sync_bn)
        x = conv(x, scaled_filters(64, width_multiplier), 3, 1, name="stem_conv3")
        x = batch_norm(x, "stem_bn3", sync_bn)
    else:
        x = conv(x, scaled_filters(64, width_multiplier), 7, 2, name="stem_conv")
        x = batch_norm(x, "stem_bn", sync_bn)
    return layers.MaxPooling2D(3, 2, padding="same", name="stem_pool")(x)


# ----------------------------------------------------------------------------- model
@encoders.register("resnet", description="ResNet v1 encoder as in SimCLR (depth 18-200, SK)")
class ResNet(keras.Model):
    """ResNet encoder mapping images to pooled features, as in SimCLR / SimCLRv2.

    Reference: [Chen et al., 2020](https://arxiv.org/abs/2002.05709) and
    [Chen et al., 2020 (v2)](https://arxiv.org/abs/2006.10029); architecture from the
    authors' `resnet.py` (post-activation ResNet v1, stride on the 3x3 convolution).

    Layer names are stable (`stem_conv`, `group1_block0_shortcut_conv`,
    `group1_block0_conv1`, `group1_block0_bn1`, ..., `final_avg_pool`); the zoo's
    checkpoint converter relies on them.

    Args:
        depth: 18, 34 (basic blocks), 50, 101, 152 or 200 (bottlenecks).
        width_multiplier: channel multiplier (1, 2, 4 for the published models). A
            float < 1 gives tiny models for tests; every layer keeps at least 1 channel.
        cifar_stem: use a 3x3 stride-1 stem without max-pool (the authors use it for
            images of 32 px).
        sk_ratio: SimCLRv2 selective-kernel ratio (0 = off, 0.0625 in the releases);
            also switches on the ResNet-D stem and shortcut. As in the authors' code,
            ResNet-18/34 get only the ResNet-D stem and shortcut (no selective kernels).
        sync_bn: synchronise BatchNorm statistics across replicas (the authors'
            `global_bn`); it takes effect only with more than one replica, so on one
            device it computes the same numbers as `sync_bn=False` at the same cost
            (`kclr.models.BatchNormalization`).
        input_shape: image shape, channels last; RGB in [0, 1].
        name: model name.

    Returns features of shape `[batch, 2048 * width_multiplier]` (`512 * w` for 18/34).

    Example:

    ```python
    encoder = kclr.models.ResNet(depth=50, width_multiplier=1)
    features = encoder(images)  # [B, 2048]
    ```
    """

    def __init__(
        self,
        depth: int = 50,
        width_multiplier: float = 1,
        cifar_stem: bool = False,
        sk_ratio: float = 0.0,
        sync_bn: bool = True,
        input_shape: tuple[int | None, int | None, int] = (None, None, 3),
        name: str = "resnet",
        **kwargs: Any,
    ) -> None:
        kind, blocks = _blocks(depth)
        if not width_multiplier or width_multiplier <= 0:
            raise ValueError(
                f"width_multiplier must be a positive number; received {width_multiplier!r}."
            )
        if sk_ratio < 0:
            raise ValueError(f"sk_ratio must be >= 0; received {sk_ratio!r}.")
        input_shape = tuple(input_shape)
        inputs = keras.Input(shape=input_shape, name="images")
        x = stem(inputs, width_multiplier, cifar_stem, sk_ratio, sync_bn)
        block_fn = bottleneck_block if kind == "bottleneck" else basic_block
        for group, (filters, strides, count) in enumerate(
            zip(GROUP_FILTERS, GROUP_STRIDES, blocks, strict=True), start=1
        ):
            for index in range(count):
                x = block_fn(
                    x,
                    scaled_filters(filters, width_multiplier),
                    strides if index == 0 else 1,
                    projection=index == 0,
                    name=f"group{group}_block{index}",
                    sync_bn=sync_bn,
                    sk_ratio=sk_ratio,
                )
        outputs = layers.GlobalAveragePooling2D(name="final_avg_pool")(x)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self.depth = depth
        self.width_multiplier = width_multiplier
        self.cifar_stem = cifar_stem
        self.sk_ratio = sk_ratio
        self.sync_bn = sync_bn
        self.image_shape = input_shape
        self.feature_dim = feature_dim(depth, width_multiplier)

    def get_config(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "width_multiplier": self.width_multiplier,
            "cifar_stem": self.cifar_stem,
            "sk_ratio": self.sk_ratio,
            "sync_bn": self.sync_bn,
            "input_shape": list(self.image_shape),
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None) -> ResNet:
        return cls(**config)


def _factory(depth: int):
    def build(width_multiplier: float = 1, **kwargs: Any) -> ResNet:
        return ResNet(depth=depth, width_multiplier=width_multiplier, **kwargs)

    build.extends = ResNet  # `**kwargs` are ResNet's arguments (specs are checked against them)
    build.__name__ = f"resnet{depth}"
    build.__qualname__ = build.__name__
    kind = "basic-block" if BLOCKS[depth][0] == "basic" else "bottleneck"
    build.__doc__ = f"""ResNet-{depth} ({kind}) encoder as in SimCLR; see `kclr.models.ResNet`.

    Args:
        width_multiplier: channel multiplier (1, 2, 4; floats < 1 for tiny models).
        **kwargs: other `ResNet` arguments (`cifar_stem`, `sk_ratio`, `sync_bn`,
            `input_shape`, `name`).

    Example:

    ```python
    encoder = kclr.models.resnet{depth}(width_multiplier=1)
    ```
    """
    return build


resnet18 = encoders.register("resnet18", description="ResNet-18 encoder (basic blocks)")(
    _factory(18)
)
resnet34 = encoders.register("resnet34", description="ResNet-34 encoder (basic blocks)")(
    _factory(34)
)
resnet50 = encoders.register("resnet50", description="ResNet-50 encoder as in SimCLR")(_factory(50))
resnet101 = encoders.register("resnet101", description="ResNet-101 encoder as in SimCLR")(
    _factory(101)
)
resnet152 = encoders.register("resnet152", description="ResNet-152 encoder as in SimCLR")(
    _factory(152)
)
resnet200 = encoders.register("resnet200", description="ResNet-200 encoder as in SimCLR")(
    _factory(200)
)
