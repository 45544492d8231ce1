"""Helpers of the fault tests: real `kclr fit` processes (`kclr.testing.processes`), the tiny run."""

from __future__ import annotations

from kclr.testing.processes import free_ports, kclr_fit, kclr_fit_workers, read_log

__all__ = ["TINY", "free_ports", "kclr_fit", "kclr_fit_workers", "read_log", "tiny_config"]

TINY = ["--preset", "tiny", "-q", "--set", "data.num_examples=64", "--set", "eval.monitor=false"]


def tiny_config(**values):
    """The `tiny` preset without the kNN monitor, with `section.key=value` overrides."""
    from kclr.run import config

    overrides = ["data.num_examples=64", "eval.monitor=false"]
    overrides += [f"{key.replace('__', '.')}={value}" for key, value in values.items()]
    return config.resolve("tiny", overrides=overrides)
