"""SimCLR ResNet-50 training throughput on an accelerator: synthetic vs real JPEG input.

Trains `kclr.ContrastiveTrainer` (ResNet-50, SimCLR v2 head, NT-Xent, LARS) with the
photometric stage on the device, mixed bfloat16 and XLA by default, twice:

- `synthetic`: one uint8 batch of views repeated from memory (no input cost);
- `real`: `kclr.data.pretraining_dataset(DIR, photometric="device")` over JPEG files
  (decode, crop, flip on the host; `--images` or JPEGs generated into a temporary folder).

Prints one JSON document with, for each: images/s (an image = one sample, 2 views), step
time, the estimated model FLOP utilisation (MFU), and whether the real-input step is
input-bound (real images/s below 90% of synthetic), plus the host pipeline's own
images/s measured alone.

FLOP count: the trained network's convolutions and dense layers, 2 FLOPs per
multiply-add, counted from the built model's layer shapes (`model_flops`), times 3 for
forward + backward (the usual estimate), times the 2 views. ResNet-50 at 224 px counts
about 4.1 G multiply-adds per view forward. Peak: `--peak-tflops`, else the dense bf16
peak of known devices (H100/H200 989 TFLOP/s, A100 312, L4 121, V100 125 fp16); MFU is
null when the peak is unknown (e.g. on CPU).

    python benchmarks/gpu_train.py                       # GPU defaults: batch 256, bf16, XLA
    python benchmarks/gpu_train.py --batch 512 --images /data/train
    python benchmarks/gpu_train.py --depth 18 --width 0.125 --image-size 32 --batch 8 \
        --steps 2 --warmup 1 --precision float32 --xla off  # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0, "V100": 125.0}


def _parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=256, help="global batch (samples)")
    parser.add_argument(
        "--precision", default="mixed_bfloat16", choices=["float32", "mixed_bfloat16"]
    )
    parser.add_argument("--xla", default="on", choices=["on", "off"])
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (compilation)")
    parser.add_argument("--images", help="folder of JPEGs (default: generated)")
    parser.add_argument("--num-images", type=int, default=1024, help="JPEGs to generate")
    parser.add_argument("--peak-tflops", type=float, help="device peak for the MFU estimate")
    return parser.parse_args(argv)


def model_flops(model) -> int:
    """Forward FLOPs of one image: 2 x multiply-adds of every Conv2D and Dense layer."""
    import keras

    total = 0
    for layer in _leaf_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            _, h, w, c_out = layer.output.shape
            c_in = layer.kernel.shape[-2]
            total += 2 * kh * kw * c_in * c_out * h * w // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return int(total)


def _leaf_layers(model):
    for layer in getattr(model, "layers", []):
        if getattr(layer, "layers", None):
            yield from _leaf_layers(layer)
        else:
            yield layer
    for stage in getattr(model, "stages", []):  # ProjectionHead keeps its layers in stages
        yield from stage


def _device():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU", None
    details = tf.config.experimental.get_device_details(gpus[0])
    return details.get("device_name", "GPU"), details


def _peak(name, override):
    if override:
        return override
    for key, value in PEAK_TFLOPS.items():
        if key in name:
            return value
    return None


def _trainer(args):
    import keras

    import kclr

    keras.config.set_dtype_policy(args.precision)
    keras.utils.set_random_seed(0)
    size = args.image_size
    encoder = kclr.models.ResNet(
        args.depth, args.width, cifar_stem=size <= 32, input_shape=(size, size, 3)
    )
    head = kclr.models.ProjectionHead("v2")
    trainer = kclr.ContrastiveTrainer(
        encoder,
        head,
        device_augmenter=kclr.data.photometric_stage("simclr", size),
        augment_seed=0,
    )
    trainer.compile(
        optimizer=kclr.optimizers.LARS(0.3, weight_decay=1e-6),
        loss=kclr.losses.NTXent(temperature=0.1),
        jit_compile=args.xla == "on",
    )
    head(encoder(keras.ops.zeros((1, size, size, 3))))
    return trainer, encoder, head


def _time_fit(trainer, dataset, args):
    trainer.fit(dataset, epochs=1, steps_per_epoch=args.warmup, verbose=0)
    start = time.perf_counter()
    history = trainer.fit(dataset, epochs=1, steps_per_epoch=args.steps, verbose=0)
    seconds = (time.perf_counter() - start) / args.steps
    return seconds, float(history.history["loss"][-1])


def _jpeg_folder(args):
    if args.images:
        return args.images, False
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from augment_throughput import generate_images

    directory = pathlib.Path(tempfile.mkdtemp(prefix="kclr-gpu-train-"))
    generate_images(directory, args.num_images)
    return str(directory), True


def main(argv=None):
    args = _parse_args(argv)
    import numpy as np
    import tensorflow as tf

    import kclr

    device, _ = _device()
    size, batch = args.image_size, args.batch
    trainer, encoder, head = _trainer(args)
    flops_forward = model_flops(encoder) + model_flops(head)
    flops_per_sample = 3 * 2 * flops_forward  # forward + backward, 2 views
    peak = _peak(device, args.peak_tflops)

    rng = np.random.default_rng(0)
    views = rng.integers(0, 256, size=(batch, 2, size, size, 3), dtype=np.uint8)
    synthetic = tf.data.Dataset.from_tensors({"views": views}).repeat()
    folder, generated = _jpeg_folder(args)
    real = kclr.data.pretraining_dataset(
        folder, recipe="simclr", image_size=size, global_batch_size=batch, seed=0,
        photometric="device",
    )  # fmt: skip

    results = {}
    for name, dataset in (("synthetic", synthetic), ("real", real)):
        seconds, loss = _time_fit(trainer, dataset, args)
        achieved = flops_per_sample * batch / seconds
        results[name] = {
            "images_per_s": round(batch / seconds, 2),
            "step_seconds": round(seconds, 4),
            "achieved_tflops": round(achieved / 1e12, 3),
            "mfu": None if peak is None else round(achieved / (peak * 1e12), 4),
            "loss": loss,
        }
    iterator = iter(real)
    next(iterator)
    start = time.perf_counter()
    for _ in range(args.steps):
        next(iterator)
    pipeline_alone = batch * args.steps / (time.perf_counter() - start)
    ratio = results["real"]["images_per_s"] / results["synthetic"]["images_per_s"]
    report = {
        "benchmark": "gpu_train",
        "device": device,
        "model": f"ResNet-{args.depth} width {args.width}, SimCLR v2 head, NT-Xent, LARS",
        "image_size": size,
        "global_batch": batch,
        "views": 2,
        "precision": args.precision,
        "xla": args.xla == "on",
        "photometric": "device",
        "flops": {
            "forward_per_view": flops_forward,
            "train_per_sample": flops_per_sample,
            "counted": "2 x multiply-adds of Conv2D + Dense layers; train = 3 x forward",
        },
        "peak_tflops": peak,
        "results": results,
        "host_pipeline_alone_images_per_s": round(pipeline_alone, 2),
        "real_over_synthetic": round(ratio, 3),
        "input_bound": ratio < 0.9,
        "images": folder if not generated else f"{args.num_images} generated JPEGs",
        "tensorflow": tf.__version__,
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
