"""Optimisation: LARS, SimCLR's warmup + cosine learning-rate schedule, and Keras's optimizers.

Importing this package registers the built-in optimizers (`lars`, and Keras's `sgd`,
`adam`, `adamw`) in `kclr.registry.optimizers` and the schedules (`warmup_cosine`,
`constant`) in `kclr.registry.schedules`.
"""

import keras as _keras

from kclr.optimizers.lars import DEFAULT_EXCLUDE, LARS
from kclr.optimizers.schedules import ConstantSchedule, WarmupCosineDecay, scale_learning_rate
from kclr.registry import optimizers as _optimizers

# Keras's own optimizers under kclr names. Keras applies decoupled weight decay
# (w -= lr * wd * w); the authors add wd * l2 to the loss instead (for momentum SGD
# the two differ only by the momentum term). LARS follows the authors exactly.
_optimizers.add("sgd", _keras.optimizers.SGD, description="Keras SGD (momentum, Nesterov)")
_optimizers.add("adam", _keras.optimizers.Adam, description="Keras Adam")
_optimizers.add("adamw", _keras.optimizers.AdamW, description="Keras AdamW (decoupled decay)")

__all__ = [
    "DEFAULT_EXCLUDE",
    "LARS",
    "ConstantSchedule",
    "WarmupCosineDecay",
    "scale_learning_rate",
]
