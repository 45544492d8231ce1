"""`kclr curate` on real images: planted near-duplicates found, and subsets worth labelling.

The data: the 10,000 Fashion-MNIST test images (Xiao et al., 2017; Debian package
`dataset-fashion-mnist`, read as `benchmarks/learning.py` reads it) as class folders of
PNGs, plus planted copies of distinct images in the folder of their source:
re-encoded as JPEG (quality 30-70), resized (to 20, 24, 36 or 48 px) and slightly cropped
(1-3 px off each side, resized back to 28 px), and byte-identical copies. A kclr encoder
is pretrained on that folder (`kclr fit --preset demo` at 32 px for `--epochs`, no labels
used), and its frozen features of every image feed `kclr.curate`.

Duplicates: for each kind of copy, the share whose most similar listed partner is its
source (`found`), and how many pairs the report lists at each threshold (planted ones and
pairs of two original images, which Fashion-MNIST has many of), beside a 64-bit dHash and
pHash (numpy, Hamming distance) as the perceptual-hash baseline.

Selection: for budgets of 10, 20 and 100 images, the classes the subset covers and the
accuracy of a linear probe (multinomial logistic regression on L2-normalised features)
trained on the subset and evaluated on every other image, for k-centre greedy, TypiClust
and random selection (mean over `--seeds` seeds) in the same run.

The folder, the run and the features are cached in `--workdir`, so a second run only
repeats the cheap part. Prints one JSON document.

    python benchmarks/curate_quality.py --workdir /tmp/curate-quality --epochs 15
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import learning  # noqa: E402  (the Fashion-MNIST reader and the demo pretraining)

COPIES = {"jpeg": 200, "resized": 200, "cropped": 200, "exact": 50}
THRESHOLDS = (0.90, 0.95, 0.97, 0.98, 0.99)
HASH_DISTANCES = (0, 4, 8, 12)  # Hamming distances (of 64 bits) for the hash baselines
BUDGETS = (10, 20, 100)


# ----------------------------------------------------------------------------- data
def planted_folder(fashion_mnist: pathlib.Path, workdir: pathlib.Path) -> pathlib.Path:
    """The test images as `<class>/<index>.png` plus planted copies; `planted.json` lists them."""
    from PIL import Image

    root = workdir / "fashion-mnist-planted"
    if (root / "planted.json").exists():
        return root
    images, labels = learning.fashion_mnist_arrays(fashion_mnist, "test")
    for name in learning.FASHION_CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    originals = []
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        path = root / learning.FASHION_CLASSES[label] / f"{i:05d}.png"
        Image.fromarray(image).save(path)
        originals.append(path)
    rng = np.random.default_rng(0)
    sources = rng.choice(len(images), size=sum(COPIES.values()), replace=False)
    planted, start = [], 0
    for kind, count in COPIES.items():
        for i in sources[start : start + count]:
            source = originals[i]
            image = Image.fromarray(images[i])
            if kind == "jpeg":
                target = source.with_name(f"copy-jpeg-{i:05d}.jpg")
                image.save(target, "JPEG", quality=int(rng.integers(30, 71)))
            elif kind == "resized":
                target = source.with_name(f"copy-resized-{i:05d}.png")
                side = int(rng.choice([20, 24, 36, 48]))
                image.resize((side, side), Image.BICUBIC).save(target)
            elif kind == "cropped":
                target = source.with_name(f"copy-cropped-{i:05d}.png")
                left, top, right, bottom = (int(v) for v in rng.integers(1, 4, size=4))
                box = (left, top, 28 - right, 28 - bottom)
                image.crop(box).resize((28, 28), Image.BILINEAR).save(target)
            else:
                target = source.with_name(f"copy-exact-{i:05d}.png")
                shutil.copyfile(source, target)
            planted.append({"copy": str(target), "source": str(source), "kind": kind})
        start += count
    (root / "planted.json").write_text(json.dumps(planted, indent=1))
    return root


def pretrain(folder: pathlib.Path, workdir: pathlib.Path, epochs: int) -> dict:
    """`kclr fit --preset demo` on the folder (cached: the export and its timing)."""
    out = workdir / f"run-{epochs}"
    record = workdir / f"run-{epochs}.json"
    if record.exists():
        return json.loads(record.read_text())
    if out.exists():
        shutil.rmtree(out)
    run = learning.pretrain_kclr(folder, epochs, out)
    record.write_text(json.dumps(run))
    return run


def features(model: str, folder: pathlib.Path, workdir: pathlib.Path) -> dict:
    """Frozen features of every image of the folder, through `kclr.curate.extract` (cached)."""
    cache = workdir / "features.npz"
    if cache.exists():
        with np.load(cache) as saved:
            return {k: saved[k] for k in saved.files}
    import kclr.curate

    start = time.perf_counter()
    out = kclr.curate.extract(model, str(folder), batch_size=500)
    seconds = time.perf_counter() - start
    result = {**out, "seconds": np.float64(seconds)}
    np.savez(cache, **result)
    return result
