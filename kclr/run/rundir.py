"""Run directories: their file names, the checks before a run uses one, the resolved config.

| path | what |
|---|---|
| `config.yaml` | the fully resolved configuration |
| `logs/train/` | TensorBoard event files |
| `metrics.csv` | one row of metrics per epoch |
| `checkpoints/` | `ckpt-STEP.npz` (variables keyed by path) and `latest.json` |
| `curves.png` | training curves |
| `neighbours.png` | 8 random images and their nearest neighbours in the final encoder's features |
| `export/` | the encoder + projection head in the zoo format (`kclr.zoo.load`) |
| `results.json` | final kNN results (and the baselines when `eval.baselines`), unreadable files |
| `.lock` | the host and pid of the `kclr fit` using the directory (`kclr.run.lock`) |

Every file is written with `kclr.durable.atomic_write` (temporary file, fsync, rename,
fsync of the folder), so a killed process never leaves a truncated file and a reader
sees the old or the new content, never a mix.
The trainer's callbacks write `metrics.csv`, `curves.png` and the
checkpoints (`kclr.trainer.callbacks`); this module names the files.
"""

from __future__ import annotations

import datetime
import os
import pathlib
from typing import Any

from kclr.durable import atomic_write

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
NEIGHBOURS_FILE = "neighbours.png"
RESULTS_FILE = "results.json"
CHECKPOINT_DIR = "checkpoints"
EXPORT_DIR = "export"
LOG_DIR = "logs"
LOCK_FILE = ".lock"  # `kclr.run.lock`: the host and pid of the `fit` using the directory


class RunDirectoryError(ValueError):
    """The run directory cannot be used as asked (exists without --resume, ...)."""


def default_run_dir(preset: str | None, root: str = "runs") -> pathlib.Path:
    """`runs/<preset>-<UTC timestamp>`."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return pathlib.Path(root) / f"{preset or 'run'}-{stamp}"


def prepare(run_dir: str | os.PathLike, resume: bool) -> pathlib.Path:
    """Checks and creates the run directory; never deletes anything.

    A new run needs a missing or empty directory; `resume=True` needs one written
    by an earlier `fit` (it has `config.yaml`).
    """
    run_dir = pathlib.Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirectoryError(f"Run directory {str(run_dir)!r} exists and is not a directory.")
    has_files = run_dir.exists() and any(p.name != LOCK_FILE for p in run_dir.iterdir())
    if has_files and not resume:
        raise RunDirectoryError(
            f"Run directory {str(run_dir)!r} already holds files. Pass `--resume` to continue "
            "that run, or choose a new `--out` directory (nothing was changed)."
        )
    if resume and has_files and not (run_dir / CONFIG_FILE).exists():
        raise RunDirectoryError(
            f"Cannot resume from {str(run_dir)!r}: it has no {CONFIG_FILE}, so it is not a kclr "
            "run directory. Point `--out` at the directory of the run to resume."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def write_config(run_dir: pathlib.Path, values: dict[str, Any]) -> pathlib.Path:
    """Writes the resolved config (a plain dict) as `config.yaml`."""
    import yaml

    text = yaml.safe_dump(values, sort_keys=False)
    return atomic_write(run_dir / CONFIG_FILE, text.encode("utf-8"))


def read_config(run_dir: pathlib.Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((run_dir / CONFIG_FILE).read_text()) or {}


def check_same_config(run_dir: pathlib.Path, saved: dict[str, Any], now: dict[str, Any]) -> None:
    """Refuses to resume `run_dir` with a configuration other than the one it was started with."""
    diff = _diff(saved, now)
    if diff:
        raise RunDirectoryError(
            f"Cannot resume {str(run_dir)!r} with a different configuration ({diff}). "
            "Resume with the same preset, data and --set options, or start a new run."
        )


def _diff(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> str:
    for key in sorted(set(a) | set(b)):
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            found = _diff(a[key], b[key], f"{prefix}{key}.")
            if found:
                return found
        elif a.get(key) != b.get(key):
            return f"`{prefix}{key}` was {a.get(key)!r}, now {b.get(key)!r}"
    return ""
