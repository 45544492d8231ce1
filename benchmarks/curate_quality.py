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

import argparse
import json
import os
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


# ------------------------------------------------------------------------ duplicates
def _rows(paths: list[str], planted: list[dict]) -> list[tuple[int, int, str]]:
    """`(copy row, source row, kind)` of each planted copy."""
    row = {p: k for k, p in enumerate(paths)}
    return [(row[p["copy"]], row[p["source"]], p["kind"]) for p in planted]


def _scores(n: int, i, j, closeness, copies, higher_is_closer: bool) -> dict:
    """Found share per kind (the copy's closest listed partner is its source, alone at that
    closeness) and the pairs listed: planted (copy and source), between two originals, other."""
    best: dict[int, list] = {}
    for a, b, value in zip(i.tolist(), j.tolist(), closeness.tolist(), strict=True):
        for x, y in ((a, b), (b, a)):
            value_x = value if higher_is_closer else -value
            current = best.get(x)
            if current is None or value_x > current[0]:
                best[x] = [value_x, {y}]
            elif value_x == current[0]:
                current[1].add(y)
    copy_rows = {c for c, _, _ in copies}
    source_of = {c: s for c, s, _ in copies}
    found: dict[str, list[bool]] = {}
    for c, s, kind in copies:
        partners = best.get(c, [None, set()])[1]
        found.setdefault(kind, []).append(partners == {s})
    planted = natural = other = 0
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        if source_of.get(a) == b or source_of.get(b) == a:
            planted += 1
        elif a not in copy_rows and b not in copy_rows:
            natural += 1
        else:
            other += 1
    return {
        "found": {k: round(float(np.mean(v)), 3) for k, v in found.items()},
        "pairs_listed": int(len(i)),
        "planted_pairs_listed": planted,
        "pairs_of_two_originals": natural,
        "other_pairs": other,
    }


def _hashes(paths: list[str]) -> dict[str, np.ndarray]:
    """64-bit dHash and pHash of each image as {-1, 1} vectors (numpy, Pillow to read)."""
    from PIL import Image

    side = 32
    k = np.arange(side)
    dct = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * side))  # DCT-II rows
    dhash, phash = [], []
    for path in paths:
        with Image.open(path) as image:
            gray = image.convert("L")
            small = np.asarray(gray.resize((9, 8), Image.BILINEAR), np.float32)
            dhash.append((small[:, 1:] > small[:, :-1]).reshape(-1))
            pixels = np.asarray(gray.resize((side, side), Image.BILINEAR), np.float32)
            low = (dct @ pixels @ dct.T)[:8, :8].reshape(-1)
            phash.append(low > np.median(low[1:]))
    return {name: np.where(np.stack(bits), 1.0, -1.0).astype(np.float32)
            for name, bits in (("dhash", dhash), ("phash", phash))}  # fmt: skip


def _hamming_pairs(signs: np.ndarray, distance: int, block: int = 2048):
    """Pairs `i < j` within `distance` bits: Hamming = (64 - a.b) / 2 for {-1, 1} codes."""
    found_i, found_j, found_d = [], [], []
    bits = signs.shape[1]
    for r0 in range(0, len(signs), block):
        hamming = (bits - signs[r0 : r0 + block] @ signs.T) / 2
        rows, cols = np.nonzero(hamming <= distance + 0.5)
        keep = cols > rows + r0
        found_i.append(rows[keep] + r0)
        found_j.append(cols[keep])
        found_d.append(np.rint(hamming[rows[keep], cols[keep]]))
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)


def duplicate_rows(x, paths, planted) -> dict:
    """Each threshold of `kclr.curate` and each distance of the hashes, scored alike."""
    from kclr.curate.near_duplicates import content_hashes, find_duplicates

    copies = _rows(paths, planted)
    row = {p: k for k, p in enumerate(paths)}
    hashes = content_hashes(paths)
    out = {"kclr": {}}
    for threshold in THRESHOLDS:
        start = time.perf_counter()
        report = find_duplicates(x, paths, threshold, hashes)
        seconds = time.perf_counter() - start
        i = np.array([row[a] for a, _, _ in report.pairs], np.int64)
        j = np.array([row[b] for _, b, _ in report.pairs], np.int64)
        s = np.array([v for _, _, v in report.pairs], np.float32)
        scored = _scores(len(paths), i, j, s, copies, higher_is_closer=True)
        # Sorted most similar first: how many of the first len(copies) pairs are planted.
        source_of = {c: src for c, src, _ in copies}
        top = zip(i[: len(copies)].tolist(), j[: len(copies)].tolist(), strict=True)
        scored["planted_among_first_pairs"] = sum(
            source_of.get(a) == b or source_of.get(b) == a for a, b in top
        )
        scored["largest_group"] = max((len(g) for g in report.groups), default=0)
        out["kclr"][str(threshold)] = {**scored, "groups": len(report.groups),
                                       "seconds": round(seconds, 2)}  # fmt: skip
    codes = _hashes(paths)
    for name, signs in codes.items():
        out[name] = {}
        for distance in HASH_DISTANCES:
            i, j, d = _hamming_pairs(signs, distance)
            out[name][str(distance)] = _scores(len(paths), i, j, d, copies, False)
    return out


# ------------------------------------------------------------------------- selection
def probe_accuracy(x, labels, chosen, classes: int = 10, steps: int = 500) -> float:
    """Multinomial logistic regression (full-batch gradient descent, L2 1e-4) trained on
    the chosen rows of L2-normalised features; top-1 on every other row."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    train, y = x[chosen], labels[chosen]
    weights = np.zeros((x.shape[1] + 1, classes))
    design = np.concatenate([train, np.ones((len(train), 1))], axis=1)
    target = np.eye(classes)[y]
    for _ in range(steps):
        logits = design @ weights
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        gradient = design.T @ (p - target) / len(train) + 1e-4 * weights
        weights -= 2.0 * gradient
    rest = np.setdiff1d(np.arange(len(x)), chosen)
    test = np.concatenate([x[rest], np.ones((len(rest), 1))], axis=1)
    return float(np.mean(np.argmax(test @ weights, axis=1) == labels[rest]))


def selection_rows(x, labels, seeds: int) -> dict:
    from kclr.curate.near_duplicates import DEFAULT_THRESHOLD
    from kclr.curate.selection import select_indices

    out = {}
    for budget in BUDGETS:
        out[str(budget)] = {}
        for method in ("typiclust", "kcenter", "random"):
            covered, accuracy, seconds = [], [], []
            for seed in range(seeds):
                start = time.perf_counter()
                chosen = select_indices(x, budget, method, threshold=DEFAULT_THRESHOLD, seed=seed)
                seconds.append(time.perf_counter() - start)
                covered.append(len(set(labels[chosen].tolist())))
                accuracy.append(probe_accuracy(x, labels, chosen))
            out[str(budget)][method] = {
                "classes_covered": round(float(np.mean(covered)), 2),
                "probe_top1": round(100 * float(np.mean(accuracy)), 2),
                "probe_top1_min_max": [
                    round(100 * min(accuracy), 2),
                    round(100 * max(accuracy), 2),
                ],  # fmt: skip
                "seconds": round(float(np.mean(seconds)), 2),
            }
            print(budget, method, out[str(budget)][method], file=sys.stderr, flush=True)
    return out


def pictures(x, paths, workdir: pathlib.Path) -> list[str]:
    """The report's PNGs on these images (for docs/curate.md)."""
    import kclr.curate

    kclr.curate.duplicates(x, paths, out=workdir / "pictures")
    kclr.curate.select(x, paths, budget=20, out=workdir / "pictures")
    return [str(workdir / "pictures" / n) for n in ("duplicates.png", "selected.png")]


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion-mnist", type=pathlib.Path, default=learning.FASHION_MNIST)
    parser.add_argument("--workdir", type=pathlib.Path, required=True,
                        help="the folder, run and features are cached here")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=15, help="pretraining epochs (15)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per selection method (5)")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    folder = planted_folder(args.fashion_mnist, args.workdir)
    run = pretrain(folder, args.workdir, args.epochs)
    extracted = features(run["export"], folder, args.workdir)
    x, paths = extracted["features"], extracted["paths"].tolist()
    labels = extracted["labels"]
    planted = json.loads((folder / "planted.json").read_text())
    return {
        "benchmark": "curate_quality",
        "data": "fashion-mnist test (Debian dataset-fashion-mnist) + planted copies",
        "images": len(paths),
        "copies": COPIES,
        "pretraining": {
            "epochs": args.epochs,
            "steps": run["steps"],
            "seconds": round(run["seconds"], 1),
        },  # fmt: skip
        "feature_dim": int(x.shape[1]),
        "extract_seconds": round(float(extracted["seconds"]), 1),
        "duplicates": duplicate_rows(x, paths, planted),
        "selection": selection_rows(x, labels, args.seeds),
        "pictures": pictures(x, paths, args.workdir),
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
