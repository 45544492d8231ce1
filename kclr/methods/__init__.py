"""Training methods: the contract (`Method`) and the built-in `simclr` (SimCLR, SupCon).

A method is the `method` spec of a run and a `kclr.methods` registry entry; plugins add
more through the `kclr.methods` entry-point group (MoCo v3: `plugins/kclr-mocov3`).
"""

from kclr.methods.base import TRAINING_SECTIONS, Method, MethodError, freeze_variables
from kclr.methods.simclr import SimCLR

__all__ = ["TRAINING_SECTIONS", "Method", "MethodError", "SimCLR", "freeze_variables"]
