"""Quickstart benchmark: `kclr fit --preset demo` end to end, as a new user runs it.

Runs the README's first command in a fresh process, times it (wall clock,
including the TensorFlow import), and reads the final kNN table from the run's
`results.json`. Prints one JSON object:

    {"seconds": ..., "knn_top1": {"raw_pixels": ..., "random_encoder": ...,
     "pretrained_encoder": ...}, "margin_over_raw_pixels": ...,
     "margin_over_random_encoder": ..., "cpu_count": ..., "load_average_1min": ...}

The margins are the comparison against the two baselines measured in the same
run (the quickstart promises >= 15 points over both, within 5 minutes on 2 CPU
cores). Usage: `python benchmarks/quickstart.py [--set key=value ...]`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time


def main(argv: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = os.path.join(tmp, "demo")
        code = "import sys; from kclr.cli import main; sys.exit(main())"
        command = [sys.executable, "-c", code, "fit", "--preset", "demo", "--out", run_dir, "-q"]
        command += argv
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        start = time.time()
        process = subprocess.run(command, env=env, capture_output=True, text=True)
        seconds = time.time() - start
        if process.returncode != 0:
            sys.stderr.write(process.stdout[-4000:] + process.stderr[-4000:])
            raise SystemExit(f"kclr fit --preset demo failed with exit code {process.returncode}")
        with open(os.path.join(run_dir, "results.json")) as handle:
            knn = json.load(handle)["knn"]
    pretrained = knn["pretrained_encoder"]
    return {
        "benchmark": "quickstart",
        "command": "kclr fit --preset demo " + " ".join(argv),
        "seconds": round(seconds, 1),
        "knn_top1": knn,
        "margin_over_raw_pixels": round(pretrained - knn["raw_pixels"], 2),
        "margin_over_random_encoder": round(pretrained - knn["random_encoder"], 2),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
