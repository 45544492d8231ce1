"""Deprecated: `kclr.rundir` is now `kclr.run.rundir`."""

import warnings

from kclr.run.rundir import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    CURVES_FILE,
    EXPORT_DIR,
    LOG_DIR,
    METRICS_FILE,
    RESULTS_FILE,
    NonFiniteLossError,
    RunDirectoryError,
    check_same_config,
    default_run_dir,
    prepare,
    read_config,
    read_metrics,
    write_config,
    write_metrics,
)

warnings.warn(
    "`kclr.rundir` is deprecated; import `kclr.run.rundir` instead.",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "CURVES_FILE",
    "EXPORT_DIR",
    "LOG_DIR",
    "METRICS_FILE",
    "RESULTS_FILE",
    "NonFiniteLossError",
    "RunDirectoryError",
    "check_same_config",
    "default_run_dir",
    "prepare",
    "read_config",
    "read_metrics",
    "write_config",
    "write_metrics",
]
