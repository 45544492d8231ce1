"""Learning on real images: kclr beside raw pixels, a random encoder and (optionally) lightly.

Pretrains the demo's network and recipe (`kclr fit --preset demo` at 32 px, the size of
the images: ResNet-18 width 0.25, ImageNet stem, v1 head of 64, NT-Xent T = 0.1, Adam 0.002 x B/256 with one warmup
epoch and cosine decay, batch 256, SimCLR CIFAR augmentation with crops of area 0.5-1) on
a real image folder for a named budget of epochs, then scores every frozen encoder with
the same code: kclr's weighted cosine kNN (k = 200, T = 0.07) and its linear probe (30
epochs, batch 256), on features of the unaugmented test split. Prints one JSON document:
accuracy, pretraining wall time, steps and images/s per row, beside raw pixels and a
randomly initialised encoder scored in the same run.

The data: `--data FOLDER` (class folders under `train/` and `test/`), or by default
Fashion-MNIST (Xiao et al., 2017; 60k/10k real 28x28 images) laid out as class folders
of PNGs from the Debian package `dataset-fashion-mnist`
(`/usr/share/datasets/fashion-mnist`, or `--fashion-mnist DIR` with its four `.gz` files),
written once into `--workdir`.

`--peer lightly` (needs `torch`, `torchvision` and `lightly`; a CPU build of torch is on
pip) trains the same network (`benchmarks/torch_reference.py`), head, loss (lightly's
`NTXentLoss`), augmentation (lightly's `SimCLRTransform` with the same crop area,
colour strength 0.5, grey p = 0.2, no blur), optimizer, schedule, batch and epochs, with
lightly's folder dataset and a torch `DataLoader`, and is scored by the same kNN and
linear probe on the same test images. Each pretraining runs in its own process, timed
from its start (imports included) to its end.

`--method NAME` (repeatable) adds a row per other training method beside SimCLR, on the
same data and budget: the method's demo preset (`NAME_demo`, e.g. `moco_v3_demo` of
`plugins/kclr-mocov3`) when there is one, else the demo preset with `method.name=NAME`.

    python benchmarks/learning.py --epochs 4 --peer lightly
    python benchmarks/learning.py --data my_folder --epochs 10
    python benchmarks/learning.py --epochs 4 --method moco_v3
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("t-shirt_top", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle_boot")  # fmt: skip
# The demo recipe, as both libraries get it.
RECIPE = {"batch": 256, "image_size": 32, "width": 0.25, "output_dim": 64, "temperature": 0.1,
          "learning_rate": 0.002, "warmup_epochs": 1, "min_scale": 0.5, "color_strength": 0.5,
          "gray_p": 0.2}  # fmt: skip
KNN = {"k": 200, "temperature": 0.07}
LINEAR = {"epochs": 30, "batch_size": 256}


# ----------------------------------------------------------------------------- data
def _idx(path: pathlib.Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist_arrays(source: pathlib.Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 images [N, 28, 28] and labels [N] of a Fashion-MNIST split."""
    prefix = {"train": "train", "test": "t10k"}[split]
    images_file = source / f"{prefix}-images-idx3-ubyte.gz"
    if not images_file.exists():
        raise SystemExit(
            f"{images_file} not found: install the Debian package dataset-fashion-mnist, "
            "pass --fashion-mnist DIR (the four .gz files), or --data FOLDER."
        )
    return _idx(images_file), _idx(source / f"{prefix}-labels-idx1-ubyte.gz")


def fashion_mnist_folder(source: pathlib.Path, workdir: pathlib.Path) -> pathlib.Path:
    """Fashion-MNIST as `train/<class>/*.png` and `test/<class>/*.png`, written once."""
    from PIL import Image

    root = workdir / "fashion-mnist"
    if (root / "complete").exists():
        return root
    for split in ("train", "test"):
        images, labels = fashion_mnist_arrays(source, split)
        for name in FASHION_CLASSES:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            Image.fromarray(image).save(root / split / FASHION_CLASSES[label] / f"{i:05d}.png")
    (root / "complete").write_text("")
    return root


def load_split(folder: pathlib.Path, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The unaugmented images of a split as float32 RGB [0, 1] at `size`, and the labels."""
    from PIL import Image

    classes = sorted(p.name for p in (folder / split).iterdir() if p.is_dir())
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((folder / split / name).iterdir()):
            image = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
            images.append(np.asarray(image))
            labels.append(label)
    return np.stack(images).astype("float32") / 255.0, np.asarray(labels, "int32")


# ------------------------------------------------------------------------- pretraining
def method_preset(method: str | None) -> tuple[str, list[str]]:
    """The preset (and overrides) a method's row runs: `METHOD_demo` if it exists."""
    from kclr import presets

    if method is None or method == "simclr":
        return "demo", []
    if f"{method}_demo" in presets.names():
        return f"{method}_demo", []
    return "demo", ["--set", f"method.name={method}"]


def pretrain_kclr(
    folder: pathlib.Path, epochs: int, out: pathlib.Path, method: str | None = None
) -> dict:
    preset, extra = method_preset(method)
    command = [sys.executable, "-m", "kclr.cli", "fit", "--preset", preset, "--data",
               str(folder), "--out", str(out), "-q", "--set", f"train.epochs={epochs}",
               "--set", "eval.monitor=false", "--set", "eval.baselines=false",
               "--set", f"data.image_size={RECIPE['image_size']}", *extra]  # fmt: skip
    start = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        sys.stderr.write(process.stdout[-3000:] + process.stderr[-3000:])
        raise SystemExit(f"kclr fit failed with exit code {process.returncode}")
    # The final checkpoint is named by its step (ckpt-000001495.npz).
    steps = max(int(p.stem.split("-")[1]) for p in (out / "checkpoints").glob("ckpt-*.npz"))
    return {"seconds": seconds, "steps": steps, "export": str(out / "export")}


def _lightly_child(folder: str, epochs: int, out: str, workers: int) -> None:
    """Runs in a child process (torch and TensorFlow are not mixed in one process):
    pretrains with lightly, then writes the frozen encoder's features of both splits."""
    import math

    import torch
    from lightly.data import LightlyDataset
    from lightly.loss import NTXentLoss
    from lightly.transforms import SimCLRTransform

    sys.path.insert(0, str(HERE))
    from torch_reference import simclr_model

    torch.manual_seed(0)
    r = RECIPE
    transform = SimCLRTransform(
        input_size=r["image_size"], cj_strength=r["color_strength"], min_scale=r["min_scale"],
        random_gray_scale=r["gray_p"], gaussian_blur=0.0, normalize=None,
    )  # fmt: skip
    dataset = LightlyDataset(input_dir=str(pathlib.Path(folder) / "train"), transform=transform)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=r["batch"], shuffle=True, drop_last=True, num_workers=workers,
        persistent_workers=workers > 0,
    )  # fmt: skip
    encoder, head = simclr_model(18, r["width"], False, r["output_dim"])
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(params, lr=r["learning_rate"] * r["batch"] / 256)
    per_epoch = len(loader)
    total, warmup = epochs * per_epoch, r["warmup_epochs"] * per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    criterion = NTXentLoss(temperature=r["temperature"])
    step = 0
    for _ in range(epochs):
        for (x0, x1), _, _ in loader:
            loss = criterion(head(encoder(x0)), head(encoder(x1)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
    trained_at = time.time()
    encoder.eval()
    features = {}
    with torch.no_grad():
        for split in ("train", "test"):
            images, _ = load_split(pathlib.Path(folder), split, r["image_size"])
            chunks = [
                encoder(torch.from_numpy(images[i : i + 500]).permute(0, 3, 1, 2).contiguous())
                for i in range(0, len(images), 500)
            ]
            features[split] = torch.cat(chunks).numpy()
    np.savez(out, steps=step, trained_at=trained_at, **features)


def pretrain_lightly(folder: pathlib.Path, epochs: int, out: pathlib.Path, workers: int) -> dict:
    """lightly's pretraining in a child process, timed from its start (imports included)
    to its last step, as `kclr fit` is timed from its start to its end."""
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import learning; "
        f"learning._lightly_child({str(folder)!r}, {epochs}, {str(out)!r}, {workers})"
    )
    start = time.time()
    process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    _, stderr = process.communicate()
    if process.returncode != 0:
        sys.stderr.write(stderr[-3000:])
        raise SystemExit(f"lightly pretraining failed with exit code {process.returncode}")
    with np.load(out) as saved:
        return {"seconds": float(saved["trained_at"]) - start, "steps": int(saved["steps"]),
                "train": saved["train"], "test": saved["test"]}  # fmt: skip


# ----------------------------------------------------------------------------- scoring
def kclr_features(encoder, images: np.ndarray) -> np.ndarray:
    import kclr

    return kclr.evaluation.extract_features(encoder, images, batch_size=500)["features"]


def score(train, test) -> dict:
    import kclr

    (train_x, train_y), (test_x, test_y) = train, test
    knn = kclr.evaluation.knn_evaluate(train_x, train_y, test_x, test_y, **KNN)
    linear = kclr.evaluation.linear_evaluation(train_x, train_y, test_x, test_y, **LINEAR)
    return {"knn_top1": round(knn["top1"], 2), "linear_top1": round(float(linear["top1"]), 2)}


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=pathlib.Path, default=None, help="class folders")
    parser.add_argument("--fashion-mnist", type=pathlib.Path, default=FASHION_MNIST)
    parser.add_argument("--workdir", type=pathlib.Path, default=None,
                        help="where Fashion-MNIST's folders and the runs go (a temp dir)")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=4, help="the budget, in epochs (4)")
    parser.add_argument("--peer", choices=["lightly"], default=None)
    parser.add_argument("--method", action="append", default=[], metavar="NAME",
                        help="another training method beside SimCLR, e.g. moco_v3")  # fmt: skip
    parser.add_argument("--peer-workers", type=int, default=os.cpu_count() or 1,
                        help="DataLoader worker processes for lightly (the cores)")  # fmt: skip
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or pathlib.Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        folder = args.data or fashion_mnist_folder(args.fashion_mnist, workdir)
        size = RECIPE["image_size"]
        train_images, train_labels = load_split(folder, "train", size)
        test_images, test_labels = load_split(folder, "test", size)
        rows = {}

        def row(name, train_features, test_features, run=None):
            result = score((train_features, train_labels), (test_features, test_labels))
            if run is not None:
                images = run["steps"] * RECIPE["batch"]
                result.update(pretrain_seconds=round(run["seconds"], 1), steps=run["steps"],
                              images_per_second=round(images / run["seconds"], 1))  # fmt: skip
            rows[name] = result
            print(name, result, file=sys.stderr, flush=True)

        row("raw_pixels", train_images.reshape(len(train_images), -1),
            test_images.reshape(len(test_images), -1))  # fmt: skip
        import keras

        import kclr

        keras.utils.set_random_seed(0)
        random = kclr.models.resnet18(width_multiplier=RECIPE["width"], cifar_stem=False)
        row("random_encoder", kclr_features(random, train_images),
            kclr_features(random, test_images))  # fmt: skip
        run = pretrain_kclr(folder, args.epochs, workdir / "kclr_run")
        encoder = kclr.zoo.load(run["export"])
        row("kclr", kclr_features(encoder, train_images), kclr_features(encoder, test_images), run)
        for method in args.method:
            run = pretrain_kclr(folder, args.epochs, workdir / f"kclr_{method}_run", method)
            encoder = kclr.zoo.load(run["export"])
            row(f"kclr_{method}", kclr_features(encoder, train_images),
                kclr_features(encoder, test_images), run)  # fmt: skip
        if args.peer == "lightly":
            missing = [m for m in ("torch", "torchvision", "lightly") if not find_spec(m)]
            if missing:
                rows["lightly"] = {"skipped": f"not installed: {missing}; "
                                   "pip install torch torchvision lightly"}  # fmt: skip
            else:
                peer = pretrain_lightly(folder, args.epochs, workdir / "lightly.npz",
                                        args.peer_workers)  # fmt: skip
                row("lightly", peer["train"], peer["test"], peer)
    result = {
        "benchmark": "learning",
        "data": str(args.data or "fashion-mnist (Debian dataset-fashion-mnist)"),
        "train_examples": int(len(train_labels)),
        "test_examples": int(len(test_labels)),
        "epochs": args.epochs,
        "methods": ["simclr", *args.method],
        "recipe": RECIPE,
        "knn": KNN,
        "linear": LINEAR,
        "rows": rows,
        "cpu_count": os.cpu_count(),
    }
    if "lightly" in rows and "pretrain_seconds" in rows["lightly"]:
        result["kclr_time_over_lightly"] = round(
            rows["kclr"]["pretrain_seconds"] / rows["lightly"]["pretrain_seconds"], 3
        )
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
