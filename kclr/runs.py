"""Deprecated: `kclr.runs` is now `kclr.run.fit` (and `kclr.run.plan` for `RunPlan`, `plan`)."""

import warnings

from kclr.run.fit import (
    FitResult,
    NonFiniteLossError,
    RunDirectoryError,
    build,
    build_models,
    build_optimizer,
    build_trainer,
    fit,
    run_values,
)
from kclr.run.plan import RunPlan, plan

warnings.warn(
    "`kclr.runs` is deprecated; import `kclr.run.fit` (and `kclr.run.plan`) instead.",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = [
    "FitResult",
    "NonFiniteLossError",
    "RunDirectoryError",
    "RunPlan",
    "build",
    "build_models",
    "build_optimizer",
    "build_trainer",
    "fit",
    "plan",
    "run_values",
]
