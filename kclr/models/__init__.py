"""Encoders and heads: SimCLR's ResNet (depth 18-200, width 1x-4x, SK) and projection heads.

Third-party backbones are encoders too: `KerasHubEncoder` (`keras_hub`, any keras-hub
backbone; keras-hub is optional and imported when one is built) and
`KerasApplicationsEncoder` (`keras_applications`, any `keras.applications` model).

Importing this package registers the built-in encoders in `kclr.registry.encoders`.
"""

from kclr.models.adapters import ApplicationPreprocessing, TokenPooling
from kclr.models.batch_norm import BatchNormalization
from kclr.models.heads import ProjectionHead, SupervisedHead
from kclr.models.keras_applications_encoder import KerasApplicationsEncoder
from kclr.models.keras_hub_encoder import KerasHubEncoder
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
    "ApplicationPreprocessing",
    "BatchNormalization",
    "KerasApplicationsEncoder",
    "KerasHubEncoder",
    "ProjectionHead",
    "ResNet",
    "SupervisedHead",
    "TokenPooling",
    "feature_dim",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet200",
]
