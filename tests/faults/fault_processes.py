"""Helpers of the fault tests: a real `kclr fit` process, and the weights of a run."""

from __future__ import annotations

import os
import subprocess
import sys

TINY = ["--preset", "tiny", "-q", "--set", "data.num_examples=64", "--set", "eval.monitor=false"]


def kclr_fit(*args: str, preexec_fn=None) -> subprocess.Popen:
    """`kclr fit ARGS` in a new Python process (CPU only), stdout and stderr together."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    code = "import sys; from kclr.cli import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, "fit", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=preexec_fn,
    )  # fmt: skip


def tiny_config(**values):
    """The `tiny` preset without the kNN monitor, with `section.key=value` overrides."""
    from kclr import config

    overrides = ["data.num_examples=64", "eval.monitor=false"]
    overrides += [f"{key.replace('__', '.')}={value}" for key, value in values.items()]
    return config.resolve("tiny", overrides=overrides)
