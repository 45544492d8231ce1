"""The idle time at the end of `fit`: wall time vs the sum of step times, per call.

Several `fit` calls in one process, interleaved over three trainers on the same network
(a ResNet, CIFAR stem, 2 views, NT-Xent, SGD) and the same data
(`tf.data.Dataset.from_tensors({"views": ...}).repeat()`, `steps_per_epoch=--steps`):

- `plain_keras`: a plain `keras.Model` with a textbook `train_step`, the dataset as is:
  the baseline, where deleting the iterator at the end of `fit` waits for tf.data's
  autotuning thread (`kclr.data.teardown` explains it);
- `plain_keras_closes_promptly`: the same model, the dataset through
  `kclr.data.teardown.closes_promptly` (autotuning off);
- `kclr`: `kclr.ContrastiveTrainer`, whose `fit` does that itself.

For each call it prints the wall time of `fit`, the sum of its step times (a callback
around each batch), the time before the first step, and the tail: the time between the
end of the last step and the return of `fit`. One JSON document on stdout.

    python benchmarks/fit_tail.py                         # 4 calls x 12 steps each
    python benchmarks/fit_tail.py --calls 2 --steps 6 --width 0.25
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TRAINERS = ("plain_keras", "plain_keras_closes_promptly", "kclr")


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4, help="fit calls per trainer")
    parser.add_argument("--steps", type=int, default=12, help="steps per fit call")
    parser.add_argument("--width", type=float, default=0.5, help="ResNet-18 width multiplier")
    parser.add_argument("--batch", type=int, default=32, help="samples (2 views each)")
    parser.add_argument("--trainers", nargs="+", default=list(TRAINERS), choices=TRAINERS)
    return parser.parse_args(argv)


def _timer_callback():
    import keras

    class StepTimes(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.begin, self.steps = time.perf_counter(), []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last_end = time.perf_counter()
            self.steps.append(self.last_end - self.start)

    return StepTimes()


def _model(which, width, batch):
    import keras

    import kclr

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from train_step import plain_keras_model

    keras.utils.set_random_seed(0)
    encoder = kclr.models.ResNet(
        depth=18, width_multiplier=width, cifar_stem=True, input_shape=(32, 32, 3)
    )
    head = kclr.models.ProjectionHead("v2")
    if which == "kclr":
        model = kclr.ContrastiveTrainer(encoder, head)
        model.compile(optimizer="sgd", loss=kclr.losses.NTXent(temperature=0.1))
    else:
        model = plain_keras_model(encoder, head, temperature=0.1)
        model.compile(optimizer="sgd")
    return model


def main(argv=None):
    args = _parse_args(argv)
    import numpy as np
    import tensorflow as tf

    from kclr.data.teardown import closes_promptly

    views = np.random.default_rng(0).uniform(size=(args.batch, 2, 32, 32, 3)).astype("float32")
    data = tf.data.Dataset.from_tensors({"views": views}).repeat()
    datasets = {
        "plain_keras": data,
        "plain_keras_closes_promptly": closes_promptly(data),
        "kclr": data,  # ContrastiveTrainer.fit applies closes_promptly itself
    }
    models = {}
    for which in args.trainers:
        models[which] = _model(which, args.width, args.batch)
        models[which].fit(datasets[which], epochs=1, steps_per_epoch=2, verbose=0)  # trace
    calls = {which: [] for which in args.trainers}
    for call in range(args.calls):
        for which, model in models.items():
            timer = _timer_callback()
            start = time.perf_counter()
            model.fit(
                datasets[which], epochs=1, steps_per_epoch=args.steps, verbose=0,
                callbacks=[timer],
            )  # fmt: skip
            end = time.perf_counter()
            row = {
                "call": call,
                "wall_s": round(end - start, 3),
                "steps_sum_s": round(sum(timer.steps), 3),
                "median_step_s": round(float(np.median(timer.steps)), 4),
                "before_first_step_s": round(timer.begin - start, 3),
                "tail_s": round(end - timer.last_end, 3),
            }
            calls[which].append(row)
            print(json.dumps({"trainer": which, **row}), file=sys.stderr, flush=True)
    summary = {
        which: {
            "calls": len(rows),
            "calls_with_tail_over_1s": sum(r["tail_s"] > 1.0 for r in rows),
            "max_tail_s": max(r["tail_s"] for r in rows),
            "total_tail_s": round(sum(r["tail_s"] for r in rows), 3),
            "wall_over_steps": round(
                sum(r["wall_s"] for r in rows) / sum(r["steps_sum_s"] for r in rows), 3
            ),
        }
        for which, rows in calls.items()
    }
    report = {
        "benchmark": "fit_tail",
        "args": vars(args),
        "tensorflow": tf.__version__,
        "cpu_count": os.cpu_count(),
        "summary": summary,
        "calls": calls,
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
