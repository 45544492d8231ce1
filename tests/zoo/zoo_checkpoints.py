"""Zoo test helpers: fake official checkpoints and an independent reference forward pass."""

from __future__ import annotations

import pathlib
import re

import numpy as np


def read_names(path: pathlib.Path) -> dict[str, tuple[int, ...]]:
    """Reads a reference list: `name [d0, d1, ...]` (space or tab separated, optional flags)."""
    shapes = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^(\S+)\s+\[([\d, ]*)\]", line.strip())
        if match:
            dims = [int(d) for d in match[2].replace(" ", "").split(",") if d]
            shapes[match[1]] = tuple(dims)
    return shapes


def scale_shapes(shapes: dict[str, tuple[int, ...]], factor: float) -> dict[str, tuple[int, ...]]:
    """Width-scales a non-SK TF1 list: channels x factor, except RGB input, 128-d output, classes."""

    def s(c: int) -> int:
        return max(1, int(round(c * factor)))

    out = {}
    for name, shape in shapes.items():
        if name.startswith("head_contrastive/nl_2/batch_normalization"):
            out[name] = shape
        elif name.startswith("head_supervised") and name.endswith("bias"):
            out[name] = shape
        elif len(shape) == 4:
            kh, kw, cin, cout = shape
            out[name] = (kh, kw, cin if cin == 3 else s(cin), s(cout))
        elif len(shape) == 2:
            cin, cout = shape
            out[name] = (s(cin), cout if cout in (128, 1000) else s(cout))
        elif len(shape) == 1:
            out[name] = (s(shape[0]),)
        else:
            out[name] = shape
    return out


def random_arrays(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    """Random but numerically tame values: fan-in scaled kernels, BN stats near identity."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, shape in shapes.items():
        leaf = name.rsplit("/", 1)[-1]
        if leaf == "kernel":
            fan_in = int(np.prod(shape[:-1]))
            value = rng.standard_normal(size=shape, dtype=np.float32) * np.float32(
                np.sqrt(1.0 / fan_in)
            )
        elif leaf == "gamma":
            value = rng.uniform(0.5, 1.5, size=shape)
        elif leaf == "moving_variance":
            value = rng.uniform(0.5, 1.5, size=shape)
        elif leaf in ("beta", "moving_mean", "bias"):
            value = rng.normal(0, 0.1, size=shape)
        else:
            value = rng.normal(size=shape)
        arrays[name] = value.astype(np.float32)
    return arrays


def write_checkpoint(prefix: pathlib.Path, arrays: dict[str, np.ndarray]) -> str:
    """Writes a TF checkpoint with exactly these variable names (as TF1 `Saver` does)."""
    import tensorflow as tf

    names = sorted(arrays)
    tensors = [
        tf.constant(arrays[n]) if not isinstance(arrays[n], bytes) else tf.constant(arrays[n])
        for n in names
    ]
    tf.raw_ops.SaveV2(
        prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors
    )
    return str(prefix)


def reference_forward(arrays, images, blocks=(3, 4, 6, 3), scope="base_model/", sk=False):
    """Official ResNet-50 (v1, post-activation) forward pass from TF1-named raw arrays.

    With `sk=True`: SimCLRv2 selective kernels with the ResNet-D stem and shortcut.

    Written independently of kclr: walks the authors' creation indices (shortcut first),
    pads strided convolutions explicitly, BatchNorm in inference mode.
    """
    import tensorflow as tf

    counters = {"conv": 0, "bn": 0}

    def name(kind: str) -> str:
        index = counters[kind]
        counters[kind] += 1
        base = "conv2d" if kind == "conv" else "batch_normalization"
        return f"{scope}{base}" + (f"_{index}" if index else "")

    def conv(x, stride):
        kernel = arrays[name("conv") + "/kernel"]
        k = kernel.shape[0]
        if stride > 1:
            beg = (k - 1) // 2
            end = k - 1 - beg
            return tf.nn.conv2d(x, kernel, stride, [[0, 0], [beg, end], [beg, end], [0, 0]])
        return tf.nn.conv2d(x, kernel, 1, "SAME")

    def bn(x, relu=True):
        n = name("bn")
        y = (x - arrays[n + "/moving_mean"]) / np.sqrt(arrays[n + "/moving_variance"] + 1e-5)
        y = y * arrays[n + "/gamma"] + arrays[n + "/beta"]
        return tf.nn.relu(y) if relu else y

    def selective_kernel(x, stride):
        streams = bn(conv(x, stride))
        a, b = tf.split(streams, 2, axis=-1)
        context = tf.reduce_mean(a + b, axis=[1, 2], keepdims=True)
        context = bn(conv(context, 1))
        logits = conv(context, 1)
        la, lb = tf.split(logits, 2, axis=-1)
        weights = tf.nn.softmax(tf.stack([la, lb]), axis=0)
        return weights[0] * a + weights[1] * b

    x = tf.constant(images)
    if sk:  # ResNet-D stem
        x = bn(conv(x, 2))
        x = bn(conv(x, 1))
        x = bn(conv(x, 1))
    else:
        x = bn(conv(x, 2))
    x = tf.nn.max_pool2d(x, 3, 2, "SAME")
    for group, count in enumerate(blocks):
        for block in range(count):
            stride = (1, 2, 2, 2)[group] if block == 0 else 1
            if block == 0 and sk:  # ResNet-D shortcut: [pad (0, 1),] average pool, 1x1 conv
                pooled = x
                if stride > 1:
                    pooled = tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]])
                    pooled = tf.nn.avg_pool2d(pooled, 2, stride, "VALID")
                else:
                    pooled = tf.nn.avg_pool2d(x, 2, 1, "SAME")
                shortcut = bn(conv(pooled, 1), relu=False)
            elif block == 0:
                shortcut = bn(conv(x, stride), relu=False)
            else:
                shortcut = x
            h = bn(conv(x, 1))
            h = selective_kernel(h, stride) if sk else bn(conv(h, stride))
            h = bn(conv(h, 1), relu=False)
            x = tf.nn.relu(h + shortcut)
    return tf.reduce_mean(x, axis=[1, 2]).numpy()
