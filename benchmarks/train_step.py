"""Throughput of one SimCLR training step (2 views): float32 vs mixed_bfloat16, XLA on/off.

Prints one JSON document with images/s (an image = one sample, i.e. 2 augmented
views) for each configuration, and the ratios mixed_bfloat16 / float32 and
XLA / no XLA measured in the same run.

    python benchmarks/train_step.py                       # short default run
    python benchmarks/train_step.py --steps 20 --warmup-steps 3 --batch-r50 32
    python benchmarks/train_step.py --models r18_cifar --policies float32
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


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument(
        "--policies",
        nargs="+",
        default=["float32", "mixed_bfloat16"],
        choices=["float32", "mixed_bfloat16", "mixed_float16"],
    )
    parser.add_argument("--xla", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    parser.add_argument("--warmup-steps", type=int, default=1, help="untimed steps (tracing, XLA)")
    parser.add_argument("--batch-r18", type=int, default=32, help="batch (samples) for r18_cifar")
    parser.add_argument("--batch-r50", type=int, default=8, help="batch (samples) for r50")
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier")
    return parser.parse_args(argv)


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
        return sorted({f for f in flags.split() if f.startswith(("avx512_bf16", "amx"))})
    except OSError:
        return []


def measure(model_name, policy, xla, batch, steps, warmup_steps, width):
    import keras
    import numpy as np
    import tensorflow as tf

    import kclr

    depth, cifar_stem, size = MODELS[model_name]
    keras.config.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        encoder = kclr.models.ResNet(
            depth=depth, width_multiplier=width, cifar_stem=cifar_stem, input_shape=(size, size, 3)
        )
        head = kclr.models.ProjectionHead("v2")
        trainer = kclr.ContrastiveTrainer(encoder, head)
        trainer.compile(
            optimizer=kclr.optimizers.LARS(0.1, weight_decay=1e-6),
            loss=kclr.losses.NTXent(temperature=0.1),
            jit_compile=xla == "on",
        )
        views = np.random.default_rng(0).uniform(size=(batch, 2, size, size, 3)).astype("float32")
        data = tf.data.Dataset.from_tensors({"views": views}).repeat()
        start = time.perf_counter()
        trainer.fit(data, epochs=1, steps_per_epoch=warmup_steps, verbose=0)
        warmup_s = time.perf_counter() - start
        start = time.perf_counter()
        history = trainer.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
        elapsed = time.perf_counter() - start
    finally:
        keras.config.set_dtype_policy("float32")
        keras.backend.clear_session()  # free the model before the next configuration
    return {
        "model": model_name,
        "image_size": size,
        "policy": policy,
        "xla": xla == "on",
        "batch": batch,
        "views": 2,
        "steps": steps,
        "seconds": round(elapsed, 3),
        "warmup_seconds": round(warmup_s, 3),
        "images_per_s": round(steps * batch / elapsed, 3),
        "views_per_s": round(2 * steps * batch / elapsed, 3),
        "final_loss": float(history.history["loss"][-1]),
    }


def main(argv=None):
    args = _parse_args(argv)
    import tensorflow as tf

    results = []
    for model_name in args.models:
        batch = args.batch_r18 if model_name == "r18_cifar" else args.batch_r50
        for xla in args.xla:
            for policy in args.policies:
                try:
                    result = measure(
                        model_name, policy, xla, batch, args.steps, args.warmup_steps, args.width
                    )
                except Exception as error:  # noqa: BLE001 - report, keep benchmarking the rest
                    result = {
                        "model": model_name,
                        "policy": policy,
                        "xla": xla == "on",
                        "error": f"{type(error).__name__}: {str(error)[:300]}",
                    }
                results.append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)  # progress
    speed = {
        (r["model"], r["policy"], r["xla"]): r["images_per_s"]
        for r in results
        if "images_per_s" in r
    }
    ratios = {}
    for (model_name, policy, xla), value in speed.items():
        base = speed.get((model_name, "float32", xla))
        if policy != "float32" and base:
            ratios[f"{model_name} {policy}/float32 xla={'on' if xla else 'off'}"] = round(
                value / base, 3
            )
        no_xla = speed.get((model_name, policy, False))
        if xla and no_xla:
            ratios[f"{model_name} {policy} xla on/off"] = round(value / no_xla, 3)
    report = {
        "benchmark": "simclr_train_step",
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "cpu_bf16_flags": _cpu_flags(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "tensorflow": tf.__version__,
        },
        "args": vars(args),
        "results": results,
        "ratios": ratios,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
