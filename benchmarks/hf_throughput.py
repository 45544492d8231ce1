"""Images/s of the pretraining input pipeline: a parquet-backed Hugging Face dataset vs a folder.

The same JPEG files are read two ways, into the same decode-and-augment pipeline
(`kclr.data.pretraining_dataset`, SimCLR recipe, 2 views, `photometric="device"`, so
the host part is read + decode + crop + resize + flip, uint8 views out):

- `folder`: `--data DIR`, one file per image;
- `hf_parquet`: `--data hf:DIR_OF_PARQUET`, the same images as a `datasets.Image`
  column in a parquet file (the form of a dataset on the Hub), loaded with
  `datasets.load_dataset` into its memory-mapped Arrow cache; kclr reads the encoded
  bytes a batch of rows at a time (`kclr.data.hf_sources`).

Measured in one process, interleaved, best of `--repeats` rounds (each round builds a
fresh iterator, discards `--warmup` batches, then times `--steps` batches).

Usage:

    python benchmarks/hf_throughput.py [--work DIR] [--images 512] [--image-size 160]

Prints one JSON object: images/s of each (best and median round, all rounds listed), the
CPU seconds per 1000 images (median; steadier than wall time on shared cores) and the
ratios hf_parquet / folder of each (the target is at least 0.8).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from augment_throughput import generate_images  # noqa: E402


def make_parquet(images: pathlib.Path, out: pathlib.Path) -> None:
    """The JPEGs of `images` as one parquet file with an Image column and a ClassLabel."""
    import datasets

    files = sorted(images.glob("*.jpg"))
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])}
    )
    table = datasets.Dataset.from_dict(
        {"image": [{"bytes": f.read_bytes(), "path": None} for f in files],
         "label": [i % 2 for i in range(len(files))]},
        features=features,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(str(out / "train-00000-of-00001.parquet"))


def rate(source, args) -> tuple[float, float]:
    """`(images/s, CPU seconds per 1000 images)` of one round (CPU time of this process:
    steadier than wall time where other processes share the cores)."""
    from kclr import data as kdata

    dataset = kdata.pretraining_dataset(
        source, recipe="simclr", image_size=args.image_size, views=2,
        global_batch_size=args.batch_size, seed=0, photometric="device", deterministic=False,
    )  # fmt: skip
    iterator = iter(dataset)
    for _ in range(args.warmup):
        next(iterator)
    started, cpu = time.perf_counter(), _cpu()
    for _ in range(args.steps):
        next(iterator)["views"].numpy()
    images = args.steps * args.batch_size
    return images / (time.perf_counter() - started), 1000 * (_cpu() - cpu) / images


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None, help="Folder for the images (default: a temp dir).")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="kclr-hf-bench-"))
    folder, parquet = work / "folder", work / "parquet"
    if not list(folder.glob("*.jpg")):
        generate_images(folder, args.images)
    if not list(parquet.glob("*.parquet")):
        make_parquet(folder, parquet)
    from kclr import data as kdata

    sources = {"folder": kdata.resolve_source(str(folder)),
               "hf_parquet": kdata.resolve_source(f"hf:{parquet}")}  # fmt: skip
    rounds: dict[str, list[float]] = {name: [] for name in sources}
    cpu: dict[str, list[float]] = {name: [] for name in sources}
    for _ in range(args.repeats):
        for name, source in sources.items():
            speed, seconds = rate(source, args)
            rounds[name].append(round(speed, 1))
            cpu[name].append(round(seconds, 3))
    best = {name: max(values) for name, values in rounds.items()}
    median = {name: statistics.median(values) for name, values in rounds.items()}
    cpu_median = {name: statistics.median(values) for name, values in cpu.items()}
    print(json.dumps({
        "benchmark": "hf_throughput", "images": len(sources["folder"]),
        "image_size": args.image_size, "batch_size": args.batch_size, "steps": args.steps,
        "images_per_second": best, "images_per_second_median": median, "rounds": rounds,
        "cpu_seconds_per_1000_images_median": cpu_median,
        "hf_parquet_over_folder": round(best["hf_parquet"] / best["folder"], 3),
        "hf_parquet_over_folder_median": round(median["hf_parquet"] / median["folder"], 3),
        "hf_parquet_over_folder_cpu": round(cpu_median["folder"] / cpu_median["hf_parquet"], 3),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
