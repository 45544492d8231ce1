"""Optimisation: LARS and SimCLR's warmup + cosine learning-rate schedule."""

from kclr.optimizers.lars import DEFAULT_EXCLUDE, LARS
from kclr.optimizers.schedules import WarmupCosineDecay, scale_learning_rate

__all__ = ["DEFAULT_EXCLUDE", "LARS", "WarmupCosineDecay", "scale_learning_rate"]
