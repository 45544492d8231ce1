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

    pathlib.Path(prefix).parent.mkdir(parents=True, exist_ok=True)
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
    return np.asarray(reference_forward_tf(arrays, images, blocks, scope, sk))


def reference_forward_tf(arrays, images, blocks=(3, 4, 6, 3), scope="base_model/", sk=False):
    """`reference_forward` on tensors (works on `tf.Variable`s inside a `tf.function`)."""
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
        return batch_norm(arrays, name("bn"), x, relu)

    def selective_kernel(x, stride):
        streams = bn(conv(x, stride))
        a, b = tf.split(streams, 2, axis=-1)
        context = tf.reduce_mean(a + b, axis=[1, 2], keepdims=True)
        context = bn(conv(context, 1))
        logits = conv(context, 1)
        la, lb = tf.split(logits, 2, axis=-1)
        weights = tf.nn.softmax(tf.stack([la, lb]), axis=0)
        return weights[0] * a + weights[1] * b

    x = tf.convert_to_tensor(images, tf.float32)
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
    return tf.reduce_mean(x, axis=[1, 2])


def batch_norm(arrays, prefix, x, relu=True):
    """Inference-mode BatchNorm (epsilon 1e-5) from `prefix/{gamma,beta,moving_*}`."""
    import tensorflow as tf

    y = (x - arrays[prefix + "/moving_mean"]) / tf.sqrt(arrays[prefix + "/moving_variance"] + 1e-5)
    y = y * arrays[prefix + "/gamma"]
    if prefix + "/beta" in arrays:
        y = y + arrays[prefix + "/beta"]
    return tf.nn.relu(y) if relu else y


def reference_heads(arrays, features, ft_proj_selector=0, scope=""):
    """The authors' projection head (TF1 names) and supervised head on `features`.

    Returns `(projection, logits)`; `logits` uses `hiddens_list[ft_proj_selector]`.
    """
    import tensorflow as tf

    hiddens = [tf.convert_to_tensor(features, tf.float32)]
    layers = sorted(
        {int(k.split("/")[1][3:]) for k in arrays if k.startswith(f"{scope}head_contrastive/nl_")}
    )
    for i in layers:
        base = f"{scope}head_contrastive/nl_{i}"
        h = tf.matmul(hiddens[-1], arrays[f"{base}/dense/kernel"])
        hiddens.append(batch_norm(arrays, f"{base}/batch_normalization", h, i != layers[-1]))
    sup = f"{scope}head_supervised/linear_layer/dense"
    logits = tf.matmul(hiddens[ft_proj_selector], arrays[f"{sup}/kernel"]) + arrays[f"{sup}/bias"]
    return hiddens[-1], logits


# ----------------------------------------------------------------------------- TF2 SavedModel keys
SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_SUB_MODELS = {"resnet/": "resnet_model", "projection_head/": "_projection_head"}


def tf1_name(tf2_name: str) -> str:
    """The TF1 variable of a TF2 Keras variable name (the `*_names.txt` lists).

    Global `conv2d_<k>` / `batch_normalization_<k>` indices are the same in both.
    """
    leaf = tf2_name.rsplit("/", 1)[-1].split(":")[0]
    parts = tf2_name.split("/")
    if tf2_name.startswith("resnet/"):
        layer = parts[-2].replace("sync_batch_normalization", "batch_normalization")
        return f"base_model/{layer}/{leaf}"
    if tf2_name.startswith("projection_head/"):
        kind = "dense" if parts[-2].startswith("dense") else "batch_normalization"
        return f"head_contrastive/{parts[1]}/{kind}/{leaf}"
    if tf2_name.startswith("head_supervised/"):
        return f"head_supervised/linear_layer/dense/{leaf}"
    raise ValueError(tf2_name)


def tf2_order(names_file: pathlib.Path) -> list[tuple[str, int, str, bool]]:
    """`(sub-model, index, TF1 name, trainable)` in the order of a `*_names.txt` list."""
    rows = []
    counts: dict[str, int] = {}
    for line in names_file.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) < 3:
            continue
        name, trainable = fields[0], fields[2].strip() == "T"
        sub = next((v for k, v in _SUB_MODELS.items() if name.startswith(k)), "supervised_head")
        rows.append((sub, counts.get(sub, 0), tf1_name(name), trainable))
        counts[sub] = counts.get(sub, 0) + 1
    return rows


def saved_model_keys(arrays, names_file, form="indexed"):
    """TF1-named arrays under the keys the authors' SavedModel export writes.

    `form="indexed"`: `model/<sub-model>/variables/<N>`; `"trainable_list"`: trainable
    variables as `trainable_variables_list/<N>` (whole-model order), the rest indexed.
    """
    out = {}
    position = 0
    for sub, index, name, trainable in tf2_order(names_file):
        if name not in arrays:
            continue
        if form == "trainable_list" and trainable:
            out[f"trainable_variables_list/{position}{SUFFIX}"] = arrays[name]
            position += 1
        else:
            out[f"model/{sub}/variables/{index}{SUFFIX}"] = arrays[name]
    return out


def export_saved_model(path, arrays, names_file, image_size=32, ft_proj_selector=0):
    """Exports a SavedModel laid out as the released ones, from TF1-named arrays.

    Variables sit at `model/<sub-model>/variables/<N>`; `sm(images, trainable=False)`
    returns the released dict (`final_avg_pool`, `logits_sup`, `proj_head_output`), computed
    by the independent reference forward pass above (non-SK ResNet-50 layout).
    """
    import tensorflow as tf
    from tensorflow.python.trackable.autotrackable import AutoTrackable

    root = tf.Module()
    root.model = AutoTrackable()
    by_name = {}
    subs: dict[str, list] = {}
    for sub, _, name, trainable in tf2_order(names_file):
        if name in arrays:
            variable = tf.Variable(arrays[name], trainable=trainable)
            by_name[name] = variable
            subs.setdefault(sub, []).append(variable)
    for sub, variables in subs.items():
        holder = AutoTrackable()
        holder.variables = variables
        setattr(root.model, sub, holder)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, image_size, image_size, 3], tf.float32),  # None: any size
            tf.TensorSpec([], tf.bool),
        ]
    )
    def call(images, trainable):
        features = reference_forward_tf(by_name, images)
        projection, logits = reference_heads(by_name, features, ft_proj_selector)
        return {
            "final_avg_pool": features,
            "proj_head_output": projection,
            "logits_sup": logits,
        }

    root.__call__ = call
    tf.saved_model.save(root, str(path))
    return path
