"""Peak memory and step time of gradient caching against the plain step (ResNet-18, 32 px).

Runs each configuration in its own subprocess (so its peak RSS is its own) and prints
one JSON document: for each configuration the peak resident memory (`peak_rss_mb`,
the process's `ru_maxrss`), the memory once the model is built (`built_rss_mb`), the
median step time (each step timed on its own, after one tracing step) and the time per
image; then the ratios against the plain batch-256 step measured in the same run, and
against the plain step at the same batch where that one fits.

Configurations (default): the gradient-cached step at global batch 256, 1024 and 4096
with chunks of 256 images, and the plain step at 256, 1024, 4096 in increasing order
while its predicted peak fits `--memory-budget-gb` (extrapolated from the previous
plain runs): the largest plain batch that ran is the one that fits.

The encoder is ResNet-18 with the CIFAR stem at 32 px and width 1/4 by default
(`--width`), so that the whole run takes minutes on a CPU; memory and time scale with
the width but the ratios are what the benchmark is for. SimCLR, 2 views, NT-Xent,
LARS, float32, synthetic images made inside the input pipeline.

    python benchmarks/gradient_cache.py                     # full run (minutes)
    python benchmarks/gradient_cache.py --quick             # smoke run (tiny width, small batches)
    python benchmarks/gradient_cache.py --width 1.0 --memory-budget-gb 40
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", nargs="+", type=int, default=[256, 1024, 4096])
    parser.add_argument("--chunk", type=int, default=256, help="images per chunk")
    parser.add_argument("--plain-batches", nargs="+", type=int, default=[256, 1024, 4096])
    parser.add_argument("--memory-budget-gb", type=float, default=8.0)
    parser.add_argument("--width", type=float, default=0.25, help="ResNet-18 width multiplier")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument(
        "--steps",
        type=int,
        default=3,
        help="timed steps per configuration (the median is reported)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (for tests)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.chunk, args.plain_batches = [32], 16, [16]
        args.width, args.image_size, args.steps = 0.0625, 16, 1
    return args


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _step_timer():
    """A Keras callback whose `seconds` lists the wall time of every training step."""
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_train_batch_begin(self, batch, logs=None):
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return StepTimer()


def run_configuration(config: dict) -> dict:
    """Builds the trainer and times `steps` steps after one warm-up step (in this process)."""
    import keras
    import tensorflow as tf

    import kclr

    batch, size = config["batch"], config["image_size"]
    keras.utils.set_random_seed(0)
    encoder = kclr.models.ResNet(
        depth=18,
        width_multiplier=config["width"],
        cifar_stem=True,
        sync_bn=False,
        input_shape=(size, size, 3),
    )
    trainer = kclr.ContrastiveTrainer(
        encoder,
        kclr.models.ProjectionHead("v2", sync_bn=False),
        gradient_cache_chunk_size=config["chunk"],
    )
    trainer.compile(
        optimizer=kclr.optimizers.LARS(0.1, weight_decay=1e-6),
        loss=kclr.losses.NTXent(temperature=0.1),
    )
    shape = (batch, 2, size, size, 3)
    data = tf.data.Dataset.range(1).repeat().map(lambda _: {"views": tf.random.uniform(shape)})
    trainer(tf.zeros((1, 2, size, size, 3)))
    built = _rss_mb()
    timer = _step_timer()
    # One `fit`: step 0 traces, the others are timed one by one. Timing whole `fit`
    # calls instead would add the seconds each call spends idle at its end on CPU
    # (waiting with both cores free), which are not a cost of the step.
    history = trainer.fit(
        data, epochs=1, steps_per_epoch=1 + config["steps"], verbose=0, callbacks=[timer]
    )
    warmup, timed = timer.seconds[0], sorted(timer.seconds[1:])
    step = timed[len(timed) // 2]  # the median
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        **config,
        "mode": "plain" if config["chunk"] is None else "gradient_cache",
        "peak_rss_mb": round(peak, 1),
        "built_rss_mb": round(built, 1),
        "step_seconds": round(step, 3),
        "step_seconds_all": [round(t, 3) for t in timer.seconds[1:]],
        "ms_per_image": round(1000 * step / batch, 3),
        "warmup_seconds": round(warmup, 2),
        "loss": float(history.history["loss"][-1]),
    }


def _spawn(config: dict) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(config)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {**config, "error": f"exit {done.returncode}: {' | '.join(tail)[-400:]}"}
    return json.loads(lines[-1])


def _predicted_peak_mb(plain: list[dict], batch: int) -> float | None:
    """Linear extrapolation of the plain step's peak from the last two plain runs."""
    done = [r for r in plain if "peak_rss_mb" in r]
    if len(done) < 2:
        return None
    a, b = done[-2], done[-1]
    slope = (b["peak_rss_mb"] - a["peak_rss_mb"]) / (b["batch"] - a["batch"])
    return b["peak_rss_mb"] + slope * (batch - b["batch"])


def _ratios(result: dict, base: dict) -> dict:
    name = f"plain {base['batch']}"
    return {
        f"peak_rss / {name}": round(result["peak_rss_mb"] / base["peak_rss_mb"], 3),
        f"ms_per_image / {name}": round(result["ms_per_image"] / base["ms_per_image"], 3),
    }


def main(argv=None):
    args = _parse_args(argv)
    if args.child:
        print(json.dumps(run_configuration(json.loads(args.child))), flush=True)
        return None
    common = {"width": args.width, "image_size": args.image_size, "steps": args.steps}
    results, plain = [], []
    for batch in sorted(args.plain_batches):
        predicted = _predicted_peak_mb(plain, batch)
        if predicted is not None and predicted > 1024 * args.memory_budget_gb:
            plain.append(
                {"mode": "plain", "batch": batch, "skipped": f"predicted {predicted:.0f} MB"}
            )
            continue
        plain.append(_spawn({**common, "batch": batch, "chunk": None}))
        print(json.dumps(plain[-1]), file=sys.stderr, flush=True)  # progress
    results.extend(plain)
    for batch in args.batches:
        results.append(_spawn({**common, "batch": batch, "chunk": args.chunk}))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    fitted = [r for r in plain if "peak_rss_mb" in r]
    base = fitted[0] if fitted else None
    ratios = {}
    for r in results:
        if base is None or "peak_rss_mb" not in r or r is base:
            continue
        name = f"{r['mode']} {r['batch']}" + (f" chunk {r['chunk']}" if r["chunk"] else "")
        ratios[name] = _ratios(r, base)
        same = [p for p in fitted if p["batch"] == r["batch"] and p is not r]
        if same:
            ratios[name].update(_ratios(r, same[0]))
    import tensorflow as tf

    report = {
        "benchmark": "gradient_cache",
        "model": f"resnet18 cifar stem, width {args.width}, {args.image_size} px, 2 views",
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "tensorflow": tf.__version__,
        },
        "args": {k: v for k, v in vars(args).items() if k != "child"},
        "largest_plain_batch_that_fits": max((r["batch"] for r in fitted), default=None),
        "results": results,
        "ratios": ratios,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
