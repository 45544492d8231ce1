"""Scale of `kclr curate`'s exact search: time and peak memory at 100k (and 1M) features.

Random 512-d float32 features (Gaussian, so two random rows have cosine ~N(0, 1/sqrt(512)))
with 100 planted near-copies (cosine > 0.99); `kclr.curate.search.pairs_above` lists every
pair at cosine >= 0.9 in blocks of `--block-size` rows. Each size runs in its own process,
which reports its wall time and the memory the search added on top of the features
(the peak resident set, reset after the features are made, minus the set before).

The baseline, in the same run: NumPy brute force (the whole `N x N` similarity matrix, then
its upper triangle above the threshold) and the blocked search at `--dense-size`, where the
dense matrix still fits, with the pairs of both compared.

From the measured rate (row pairs per second) the exact search's time grows as `N**2`: the
JSON gives the size past which it takes more than an hour on this machine, where an
approximate index (faiss or hnswlib, not a kclr dependency) would take over.

    python benchmarks/curate_scale.py                 # 100k
    python benchmarks/curate_scale.py --million       # 100k and 1M (an hour or more on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

THRESHOLD = 0.9
PLANTED = 100


def features(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """`n` random rows, the last `PLANTED` (or fewer) near-copies of earlier ones."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, dim), np.float32)
    for r0 in range(0, n, 65536):  # in chunks: no float64 copy of the whole array
        x[r0 : r0 + 65536] = rng.standard_normal((min(65536, n - r0), dim), np.float32)
    planted = min(PLANTED, n // 2)
    sources = rng.choice(n - planted, size=planted, replace=False)
    x[n - planted :] = x[sources] + 0.05 * rng.standard_normal((planted, dim), np.float32)
    return x


def _memory() -> dict[str, int]:
    """Resident set and its peak, in KiB (Linux /proc)."""
    values = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM to the current resident set
        return True
    except OSError:
        return False


def measure(kind: str, n: int, dim: int, block_size: int) -> dict:
    """One measurement (run in a child process): `kind` is "blocked" or "dense"."""
    import tensorflow as tf

    from kclr.curate.search import normalise, pairs_above

    tf.constant(1.0) + 1  # start TensorFlow before measuring
    x = features(n, dim)
    reset = _reset_peak()
    before = _memory()["VmRSS"]
    start = time.perf_counter()
    if kind == "blocked":
        i, j, _ = pairs_above(x, THRESHOLD, block_size=block_size)
    else:
        nx = normalise(x)
        similarity = nx @ nx.T
        i, j = np.nonzero(np.triu(similarity >= THRESHOLD, k=1))
        del similarity
    seconds = time.perf_counter() - start
    peak = _memory()["VmHWM"]
    return {
        "kind": kind,
        "n": n,
        "seconds": round(seconds, 2),
        "pairs": int(len(i)),
        "pair_hash": int(np.sum((np.asarray(i) * 1_000_003 + np.asarray(j)) % 1_000_000_007)),
        "features_mib": round(x.nbytes / 2**20, 1),
        "search_peak_extra_mib": round((peak - before) / 1024, 1) if reset else None,
        "dense_matrix_mib": round(n * n * 4 / 2**20, 1),
        "row_pairs_per_second": round(n * n / 2 / seconds),
    }


def _child(kind: str, n: int, dim: int, block_size: int) -> dict:
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); import curate_scale; "
        f"print(json.dumps(curate_scale.measure({kind!r}, {n}, {dim}, {block_size})))"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{kind} search at n={n} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--million", action="store_true", help="also 1,000,000 features")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--block-size", type=int, default=4096)
    parser.add_argument("--dense-size", type=int, default=20_000,
                        help="size of the dense NumPy baseline (its N x N matrix must fit)")  # fmt: skip
    args = parser.parse_args(argv)
    sizes = [*args.sizes, *([1_000_000] if args.million else [])]
    baseline = {
        "dense_numpy": _child("dense", args.dense_size, args.dim, args.block_size),
        "blocked": _child("blocked", args.dense_size, args.dim, args.block_size),
    }
    same = all(baseline["dense_numpy"][k] == baseline["blocked"][k] for k in ("pairs", "pair_hash"))
    rows = [_child("blocked", n, args.dim, args.block_size) for n in sizes]
    rate = rows[-1]["row_pairs_per_second"]
    hour = int((2 * 3600 * rate) ** 0.5)
    return {
        "benchmark": "curate_scale",
        "dim": args.dim,
        "block_size": args.block_size,
        "threshold": THRESHOLD,
        "planted_pairs": PLANTED,
        "baseline": {**baseline, "same_pairs": same},
        "blocked": rows,
        "exact_search_within_an_hour_up_to": hour,
        "approximate_index": (
            f"past ~{hour:,} images the exact search takes over an hour here (time grows as "
            "N^2); an approximate index (faiss IVF/HNSW or hnswlib, an optional extra) then "
            "takes over at the cost of some recall"
        ),
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
