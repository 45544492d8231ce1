"""Encoders and heads: SimCLR's ResNet (depth 18-200, width 1x-4x, SK) and projection heads.

Importing this package registers the built-in encoders in `kclr.registry.encoders`.
"""

from kclr.models.batch_norm import BatchNormalization
from kclr.models.heads import ProjectionHead, SupervisedHead
from kclr.models.resnet import (
    ResNet,
    feature_dim,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnet200,
)

__all__ = [
    "BatchNormalization",
    "ProjectionHead",
    "ResNet",
    "SupervisedHead",
    "feature_dim",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet200",
]
