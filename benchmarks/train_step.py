"""kclr's SimCLR train step vs the same network as plain Keras and in PyTorch.

For each numerics configuration (dtype policy x XLA), three trainers get the same
ResNet and projection head (same weights) and the same batch of 2 views:

- `plain_keras`: a `keras.Model` whose `train_step` is the Keras guide's, written
  directly: concatenate the two views, encoder + head, a textbook NT-Xent, SGD;
- `kclr_sync_bn`: `kclr.ContrastiveTrainer` with `sync_bn=True` (the default);
- `kclr_no_sync_bn`: the same with `sync_bn=False`;
- `pytorch`: the same network, head and loss written in PyTorch
  (`benchmarks/torch_reference.py`), the same optimizer, on the same batch (skipped, with
  the reason in the JSON, where `torch` is not installed).

They are timed interleaved in one process, step by step (round robin over the
trainers, `--repeats` x `--steps` single steps each, calling each model's compiled
`train_function` directly), and each keeps its fastest step and its median, so
background load hits all of them alike. Prints one JSON document: step time and images/s of each, and the ratios
`kclr / plain_keras` (the issue's target: kclr within 5% of plain Keras, with sync_bn
free on one device).

    python benchmarks/train_step.py                              # ResNet-18 CIFAR stem, 32 px
    python benchmarks/train_step.py --batch 64 --steps 3 --repeats 3
    python benchmarks/train_step.py --policies float32 mixed_bfloat16 --xla off on
    python benchmarks/train_step.py --model demo       # the demo's step: R18 w0.25, 2x256, Adam

TensorFlow's CPU path is chosen before TensorFlow is imported, as `kclr fit` does
(`--onednn auto|on|off`, `kclr.runtime`), and printed in the JSON (`cpu_path`).
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
    "demo": (18, False, 24),  # `kclr fit --preset demo`: set --width 0.25 --batch 256
}
TRAINERS = ("plain_keras", "kclr_sync_bn", "kclr_no_sync_bn")
DEMO = {"width": 0.25, "batch": 256, "optimizer": "adam", "head": "v1"}


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="r18_cifar", choices=list(MODELS))
    parser.add_argument("--width", type=float, default=None, help="width multiplier (1)")
    parser.add_argument("--batch", type=int, default=None, help="samples, 2 views each (64)")
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default=None, help="(sgd)")
    parser.add_argument("--head", choices=["v1", "v2"], default=None, help="(v2)")
    parser.add_argument("--image-size", type=int, default=None, help="(the model's)")
    parser.add_argument(
        "--trainers",
        nargs="+",
        default=[*TRAINERS, "pytorch"],
        choices=[*TRAINERS, "pytorch"],
        help="plain_keras always runs: it is the baseline of the ratios",
    )
    parser.add_argument("--onednn", choices=["auto", "on", "off"], default="auto")
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
    args = parser.parse_args(argv)
    defaults = DEMO if args.model == "demo" else {"width": 1.0, "batch": 64}
    defaults = {"optimizer": "sgd", "head": "v2", **defaults}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if "plain_keras" not in args.trainers:
        args.trainers.insert(0, "plain_keras")
    return args


def make_optimizer(name: str):
    import keras

    if name == "adam":
        return keras.optimizers.Adam(0.002)
    return keras.optimizers.SGD(0.1, momentum=0.9)


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


def build(which, args, policy, xla, weights=None):
    import keras

    import kclr

    depth, cifar_stem, size = MODELS[args.model]
    size = args.image_size or size
    keras.config.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    encoder = kclr.models.ResNet(
        depth=depth,
        width_multiplier=args.width,
        cifar_stem=cifar_stem,
        sync_bn=which == "kclr_sync_bn",
        input_shape=(size, size, 3),
    )
    head_kwargs = {"output_dim": 64} if args.head == "v1" else {}
    head = kclr.models.ProjectionHead(args.head, sync_bn=which == "kclr_sync_bn", **head_kwargs)
    if which == "plain_keras":
        model = plain_keras_model(encoder, head, temperature=0.1)
        model.compile(optimizer=make_optimizer(args.optimizer), jit_compile=xla)
    else:
        model = kclr.ContrastiveTrainer(encoder, head)
        model.compile(
            optimizer=make_optimizer(args.optimizer),
            loss=kclr.losses.NTXent(temperature=0.1),
            jit_compile=xla,
        )
    head(encoder(keras.ops.zeros((1, size, size, 3))))
    if weights is not None:
        for variable, value in zip(encoder.weights + head.weights, weights, strict=True):
            variable.assign(value)
    return model, encoder, head


class TorchStep:
    """The same step in PyTorch: views -> encoder -> head -> NT-Xent -> optimizer."""

    def __init__(self, args, views):
        import torch
        import torch_reference

        depth, cifar_stem, _ = MODELS[args.model]
        torch.manual_seed(0)
        torch.set_num_threads(os.cpu_count() or 1)
        encoder, head = torch_reference.simclr_model(
            depth, args.width, cifar_stem, 64 if args.head == "v1" else 128
        )
        self.model = torch.nn.Sequential(encoder, head).train()
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        if args.optimizer == "adam":
            self.optimizer = torch.optim.Adam(parameters, lr=0.002)
        else:
            self.optimizer = torch.optim.SGD(parameters, lr=0.1, momentum=0.9)
        both = views.transpose(1, 0, 4, 2, 3).reshape(-1, *views.shape[-1:], *views.shape[2:4])
        self.images = torch.from_numpy(both.copy())
        self.loss = torch_reference.nt_xent

    def __call__(self):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.model(self.images), 0.1)
        loss.backward()
        self.optimizer.step()
        return float(loss)


def torch_unavailable() -> str | None:
    try:
        import torch  # noqa: F401
    except ImportError as error:
        return f"torch is not installed ({error}); pip install torch to compare"
    return None


def run_config(args, policy, xla):
    import keras
    import numpy as np
    import tensorflow as tf

    depth, cifar_stem, size = MODELS[args.model]
    size = args.image_size or size
    views = np.random.default_rng(0).uniform(size=(args.batch, 2, size, size, 3))
    views = views.astype("float32")
    data = tf.data.Dataset.from_tensors({"views": views}).repeat()
    keras_trainers = [t for t in args.trainers if t in TRAINERS]
    steps, weights, skipped = {}, None, {}
    try:
        for which in keras_trainers:
            model, encoder, head = build(which, args, policy, xla, weights)
            if weights is None:
                weights = [w.numpy() for w in encoder.weights + head.weights]
            model.fit(data, epochs=1, steps_per_epoch=args.warmup_steps, verbose=0)
            iterator = iter(data)

            def step(model=model, iterator=iterator):
                return float(model.train_function(iterator)["loss"])  # waits for the step

            steps[which] = step
        if "pytorch" in args.trainers:
            reason = torch_unavailable() or (
                None if policy == "float32" and not xla else "float32 without XLA only"
            )
            if reason is None:
                steps["pytorch"] = TorchStep(args, views)
                for _ in range(args.warmup_steps):
                    steps["pytorch"]()
            else:
                skipped["pytorch"] = reason
        rounds = {which: [] for which in steps}
        for _ in range(args.repeats * args.steps):
            for which, step in steps.items():
                start = time.perf_counter()
                step()
                rounds[which].append(time.perf_counter() - start)
    finally:
        keras.config.set_dtype_policy("float32")
    best = {which: min(times) for which, times in rounds.items()}
    median = {which: float(np.median(times)) for which, times in rounds.items()}
    others = [which for which in rounds if which != "plain_keras"]
    result = {
        "policy": policy,
        "xla": xla,
        "step_seconds": {k: round(v, 4) for k, v in best.items()},
        "images_per_s": {k: round(args.batch / v, 2) for k, v in best.items()},
        "median_step_seconds": {k: round(v, 4) for k, v in median.items()},
        "all_step_seconds": {k: [round(t, 4) for t in v] for k, v in rounds.items()},
        "ratio_step_time_vs_plain_keras": {
            which: round(best[which] / best["plain_keras"], 3) for which in others
        },
        "ratio_median_step_time_vs_plain_keras": {
            which: round(median[which] / median["plain_keras"], 3) for which in others
        },
        "skipped": skipped,
    }
    if "pytorch" in rounds:
        result["ratio_median_step_time_vs_pytorch"] = {
            which: round(median[which] / median["pytorch"], 3)
            for which in rounds
            if which != "pytorch"
        }
    if {"kclr_sync_bn", "kclr_no_sync_bn"} <= set(rounds):
        result["ratio_sync_bn_vs_no_sync_bn"] = round(
            best["kclr_sync_bn"] / best["kclr_no_sync_bn"], 3
        )
    keras.backend.clear_session()
    return result


def main(argv=None):
    args = _parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # torch_reference
    from kclr import runtime

    cpu_path = runtime.apply_onednn(args.onednn)  # before TensorFlow is imported
    if "pytorch" in args.trainers and torch_unavailable() is None:
        # A torch optimizer imports torch._dynamo and triton (CUDA builds of torch) on
        # first use, and triton's import crashes once TensorFlow is loaded; imported
        # first, both run side by side.
        import torch._dynamo  # noqa: F401
    import tensorflow as tf

    results = []
    for xla in args.xla:
        for policy in args.policies:
            result = run_config(args, policy, xla == "on")
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)  # progress
    report = {
        "benchmark": "train_step_vs_plain_keras_and_pytorch",
        "cpu_path": cpu_path,
        "model": args.model,
        "width": args.width,
        "image_size": args.image_size or MODELS[args.model][2],
        "batch": args.batch,
        "views": 2,
        "optimizer": "Adam(0.002)" if args.optimizer == "adam" else "SGD(0.1, momentum=0.9)",
        "head": args.head,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "tensorflow": tf.__version__,
            "torch": _torch_version(),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        },
        "args": vars(args),
        "results": results,
    }
    print(json.dumps(report, indent=2))
    return report


def _torch_version():
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


if __name__ == "__main__":
    main()
