"""MoCo v3 for kclr: the method, its MLPs, its LARS and presets, through entry points only.

Reference: Chen, Xie, He, "An Empirical Study of Training Self-Supervised Vision
Transformers", ICCV 2021 (facebookresearch/moco-v3).
"""

from kclr_mocov3.lars import MoCoLARS
from kclr_mocov3.loss import contrastive_loss, symmetric_loss
from kclr_mocov3.method import MoCoV3
from kclr_mocov3.mlp import MoCoMLP
from kclr_mocov3.schedule import moco_momentum

__all__ = [
    "MoCoLARS",
    "MoCoMLP",
    "MoCoV3",
    "contrastive_loss",
    "moco_momentum",
    "symmetric_loss",
]
