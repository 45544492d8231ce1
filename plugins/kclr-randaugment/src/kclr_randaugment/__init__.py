"""RandAugment and AutoAugment policies as kclr augmentation layers."""

from kclr_randaugment.policies import AutoAugment, RandAugment

__all__ = ["AutoAugment", "RandAugment"]
__version__ = "0.1.0"
