"""Where the demo's train step spends its time on CPU, op by op (TensorFlow's profiler).

Builds the demo's network and step (`kclr fit --preset demo`: ResNet-18 width 0.25,
ImageNet stem, 32 px, 2 x 256 views, v1 head of 64, NT-Xent T = 0.1, Adam), runs it on a
fixed synthetic batch, records `--steps` steps with `tf.profiler`, and groups the ops'
self time (TensorFlow's `framework_op_stats`) into what they are: convolutions (forward,
gradient w.r.t. the input, gradient w.r.t. the filter), BatchNorm, pooling,
elementwise, the loss, the optimizer, data and other. Prints one JSON document: the step's
wall time, the ops' self time per step by category and the top ops, so the share of each
part is measured, not guessed; the heaviest single ops name the layers.

    python benchmarks/profile_step.py                    # TensorFlow's CPU path for this CPU
    python benchmarks/profile_step.py --onednn off       # the other path
    python benchmarks/profile_step.py --width 0.125 --image-size 32

TensorFlow's CPU path is chosen before TensorFlow is imported (`kclr.runtime`), as
`kclr fit` chooses it, and printed as `cpu_path`.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (category, test on the op type, test on the op name), the first match wins.
CATEGORIES = (
    ("conv_backprop_filter", lambda t: t.startswith("Conv2DBackpropFilter"), None),
    ("conv_backprop_input", lambda t: t.startswith("Conv2DBackpropInput"), None),
    ("conv_forward", lambda t: "Conv2D" in t, None),
    ("optimizer", None, lambda n: "/adam/" in n.lower() or "/optimizer/" in n.lower()),
    ("loss", None, lambda n: "ntxent" in n.lower().replace("_", "") or "/loss" in n.lower()),
    ("batch_norm", lambda t: "BatchNorm" in t, lambda n: "_bn" in n or "batch_norm" in n),
    ("pooling", lambda t: "Pool" in t, None),
    ("data", lambda t: t.startswith("Iterator") or t == "Dataset", None),
    ("matmul", lambda t: t in ("MatMul", "BatchMatMulV2"), None),
)
ELEMENTWISE = {"Relu", "ReluGrad", "AddV2", "AddN", "Mul", "Sub", "RealDiv", "Square",
               "SquaredDifference", "Rsqrt", "Sqrt", "Exp", "Log", "Neg", "Maximum",
               "Minimum", "SelectV2", "Cast", "BiasAdd", "BiasAddGrad", "Pad", "Tile",
               "Sum", "Mean", "Transpose"}  # fmt: skip


def category(op_type: str, name: str) -> str:
    for label, by_type, by_name in CATEGORIES:
        if (by_type and by_type(op_type)) or (by_name and by_name(name)):
            return label
    return "elementwise_and_reductions" if op_type in ELEMENTWISE else "other"


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onednn", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256, help="samples, 2 views each")
    parser.add_argument("--steps", type=int, default=5, help="profiled steps")
    parser.add_argument("--top", type=int, default=12, help="heaviest ops listed")
    args = parser.parse_args(argv)

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from kclr import runtime

    cpu_path = runtime.apply_onednn(args.onednn)

    import keras
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as profiler_plugin

    import kclr

    keras.utils.set_random_seed(0)
    encoder = kclr.models.ResNet(
        depth=18, width_multiplier=args.width, cifar_stem=False, sync_bn=False
    )
    head = kclr.models.ProjectionHead("v1", output_dim=64, sync_bn=False)
    trainer = kclr.ContrastiveTrainer(encoder, head)
    trainer.compile(optimizer=keras.optimizers.Adam(0.002), loss=kclr.losses.NTXent(0.1))
    shape = (args.batch, 2, args.image_size, args.image_size, 3)
    views = np.random.default_rng(0).uniform(size=shape).astype("float32")
    batches = iter(tf.data.Dataset.from_tensors({"views": views}).repeat())
    trainer.make_train_function()
    for _ in range(2):  # tracing and oneDNN's first-call primitives
        float(trainer.train_function(batches)["loss"])
    wall = []
    for _ in range(args.steps):
        start = time.perf_counter()
        float(trainer.train_function(batches)["loss"])
        wall.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(args.steps):
            float(trainer.train_function(batches)["loss"])
        tf.profiler.experimental.stop()
        (path,) = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
        data, _ = profiler_plugin.xspace_to_tools_data([path], "framework_op_stats", {})
    table = json.loads(data)[0]
    columns = [c["id"] for c in table["cols"]]
    rows = [dict(zip(columns, (c["v"] for c in r["c"]), strict=False)) for r in table["rows"]]
    per_step = collections.Counter()
    ops = []
    for row in rows:
        if row["type"] == "IDLE":
            continue
        ms = row["total_self_time"] / 1000.0 / args.steps
        per_step[category(row["type"], row["operation"])] += ms
        ops.append((ms, row["type"], row["operation"]))
    total = sum(per_step.values())
    ops.sort(reverse=True)
    return {
        "benchmark": "profile_step",
        "cpu_path": cpu_path,
        "model": f"ResNet-18 w{args.width:g}, ImageNet stem, {args.image_size} px, "
        f"2x{args.batch} views, v1 head 64, NT-Xent, Adam",
        "step_ms": {
            "median": round(1000 * float(np.median(wall)), 1),
            "min": round(1000 * min(wall), 1),
        },  # fmt: skip
        "op_self_ms_per_step": round(total, 1),
        "by_category_ms": {k: round(v, 1) for k, v in per_step.most_common()},
        "by_category_share": {k: round(v / total, 3) for k, v in per_step.most_common()},
        "top_ops": [
            {"ms": round(ms, 1), "type": t, "name": n.split("/", 1)[-1]}
            for ms, t, n in ops[: args.top]
        ],  # fmt: skip
        "cpu_count": os.cpu_count(),
        "note": "op self times are summed over TensorFlow's threads, so they can exceed the "
        "wall time on several cores",
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
