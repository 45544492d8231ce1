"""kclr's SimCLR train step vs the same network trained by a plain Keras model.

For each numerics configuration (dtype policy x XLA), three trainers get the same
ResNet and projection head (same weights) and the same batch of 2 views:

- `plain_keras`: a `keras.Model` whose `train_step` is the Keras guide's, written
  directly: concatenate the two views, encoder + head, a textbook NT-Xent, SGD;
- `kclr_sync_bn`: `kclr.ContrastiveTrainer` with `sync_bn=True` (the default);
- `kclr_no_sync_bn`: the same with `sync_bn=False`.

They are timed interleaved in one process, step by step (round robin over the
trainers, `--repeats` x `--steps` single steps each, calling each model's compiled
`train_function` directly), and each keeps its fastest step and its median, so
background load hits all of them alike. Prints one JSON document: step time and images/s of each, and the ratios
`kclr / plain_keras` (the issue's target: kclr within 5% of plain Keras, with sync_bn
free on one device).

    python benchmarks/train_step.py                              # ResNet-18 CIFAR stem, 32 px
    python benchmarks/train_step.py --batch 64 --steps 3 --repeats 3
    python benchmarks/train_step.py --policies float32 mixed_bfloat16 --xla off on
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = {
    # name: (depth, cifar_stem, image size)
    "r18_cifar": (18, True, 32),
    "r50": (50, False, 224),
}
TRAINERS = ("plain_keras", "kclr_sync_bn", "kclr_no_sync_bn")


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="r18_cifar", choices=list(MODELS))
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier")
    parser.add_argument("--batch", type=int, default=64, help="samples (2 views each)")
    parser.add_argument(
        "--policies",
        nargs="+",
        default=["float32"],
        choices=["float32", "mixed_bfloat16", "mixed_float16"],
    )
    parser.add_argument("--xla", nargs="+", default=["off"], choices=["off", "on"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (steps x repeats timed)")
    parser.add_argument("--warmup-steps", type=int, default=1, help="untimed steps (tracing)")
    return parser.parse_args(argv)


def plain_keras_model(encoder, head, temperature):
    """A Keras-guide custom `train_step` on the same network: no framework around it."""
    import keras
    import tensorflow as tf

    class PlainSimCLR(keras.Model):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.head = head

        def call(self, images, training=False):
            return self.head(self.encoder(images, training=training), training=training)[-1]

        def train_step(self, data):
            views = data["views"]
            images = tf.concat([views[:, 0], views[:, 1]], axis=0)  # [2B, H, W, 3]
            with tf.GradientTape() as tape:
                z = tf.cast(self(images, training=True), tf.float32)
                z = tf.math.l2_normalize(z, axis=-1)
                n = tf.shape(z)[0] // 2
                logits = tf.matmul(z, z, transpose_b=True) / temperature
                logits -= 1e9 * tf.eye(2 * n)
                labels = tf.concat([tf.range(n) + n, tf.range(n)], axis=0)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
                )
            variables = self.trainable_variables
            self.optimizer.apply(tape.gradient(loss, variables), variables)
            return {"loss": loss}

    return PlainSimCLR()


def build(which, model_name, width, policy, xla, weights=None):
    import keras

    import kclr

    depth, cifar_stem, size = MODELS[model_name]
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    encoder = kclr.models.ResNet(
        depth=depth,
        width_multiplier=width,
        cifar_stem=cifar_stem,
        sync_bn=which == "kclr_sync_bn",
        input_shape=(size, size, 3),
    )
    head = kclr.models.ProjectionHead("v2", sync_bn=which == "kclr_sync_bn")
    if which == "plain_keras":
        model = plain_keras_model(encoder, head, temperature=0.1)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), jit_compile=xla)
    else:
        model = kclr.ContrastiveTrainer(encoder, head)
        model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss=kclr.losses.NTXent(temperature=0.1),
            jit_compile=xla,
        )
    head(encoder(keras.ops.zeros((1, size, size, 3))))
    if weights is not None:
        for variable, value in zip(encoder.weights + head.weights, weights, strict=True):
            variable.assign(value)
    return model, encoder, head


def run_config(args, policy, xla):
    import keras
    import numpy as np
    import tensorflow as tf

    depth, cifar_stem, size = MODELS[args.model]
    views = np.random.default_rng(0).uniform(size=(args.batch, 2, size, size, 3))
    data = tf.data.Dataset.from_tensors({"views": views.astype("float32")}).repeat()
    models, weights = {}, None
    try:
        for which in TRAINERS:
            model, encoder, head = build(which, args.model, args.width, policy, xla, weights)
            if weights is None:
                weights = [w.numpy() for w in encoder.weights + head.weights]
            model.fit(data, epochs=1, steps_per_epoch=args.warmup_steps, verbose=0)
            models[which] = model
        rounds = {which: [] for which in TRAINERS}
        iterators = {which: iter(data) for which in TRAINERS}
        for _ in range(args.repeats * args.steps):
            for which, model in models.items():
                start = time.perf_counter()
                logs = model.train_function(iterators[which])
                float(logs["loss"])  # wait for the step
                rounds[which].append(time.perf_counter() - start)
    finally:
        keras.config.set_dtype_policy("float32")
    best = {which: min(times) for which, times in rounds.items()}
    median = {which: float(np.median(times)) for which, times in rounds.items()}
    result = {
        "policy": policy,
        "xla": xla,
        "step_seconds": {k: round(v, 4) for k, v in best.items()},
        "images_per_s": {k: round(args.batch / v, 2) for k, v in best.items()},
        "median_step_seconds": {k: round(v, 4) for k, v in median.items()},
        "all_step_seconds": {k: [round(t, 4) for t in v] for k, v in rounds.items()},
        "ratio_step_time_vs_plain_keras": {
            which: round(best[which] / best["plain_keras"], 3) for which in TRAINERS[1:]
        },
        "ratio_median_step_time_vs_plain_keras": {
            which: round(median[which] / median["plain_keras"], 3) for which in TRAINERS[1:]
        },
        "ratio_sync_bn_vs_no_sync_bn": round(best["kclr_sync_bn"] / best["kclr_no_sync_bn"], 3),
    }
    keras.backend.clear_session()
    return result


def main(argv=None):
    args = _parse_args(argv)
    import tensorflow as tf

    results = []
    for xla in args.xla:
        for policy in args.policies:
            result = run_config(args, policy, xla == "on")
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)  # progress
    report = {
        "benchmark": "train_step_vs_plain_keras",
        "model": args.model,
        "width": args.width,
        "image_size": MODELS[args.model][2],
        "batch": args.batch,
        "views": 2,
        "optimizer": "SGD(0.1, momentum=0.9)",
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "tensorflow": tf.__version__,
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        },
        "args": vars(args),
        "results": results,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
