"""Batched, seedable augmentation layers and the SimCLR / SupCon recipes.

Every layer takes `[B, H, W, 3]` float32 in `[0, 1]` (a photometric layer after a bicubic
crop: within `PHOTOMETRIC_INPUT_RANGE`), draws per-image random parameters
in one batched call, works in `tf.data` and inside a model, and is identity with
`training=False`.

Example:

```python
import kclr.augment as A

augmenter = A.MultiView(kclr.registry.recipes.get("simclr", image_size=224), views=2)
views = augmenter(images)  # [B, 2, 224, 224, 3]
```
"""

from kclr.augment import recipes
from kclr.augment.base import (
    PHOTOMETRIC_INPUT_RANGE,
    AugmentationLayer,
    DeviceBatch,
    apply_where,
    bernoulli,
    fold,
    normal,
    select,
    uniform,
)
from kclr.augment.center_crop import CenterCrop
from kclr.augment.color_distortion import ColorDistortion
from kclr.augment.multi_view import MultiView
from kclr.augment.per_view import PerView
from kclr.augment.pipeline import AugmentationPipeline, split_stages
from kclr.augment.random_apply import RandomApply
from kclr.augment.random_choice import RandomChoice
from kclr.augment.random_cutout import RandomCutout
from kclr.augment.random_flip import RandomFlip
from kclr.augment.random_gaussian_blur import RandomGaussianBlur
from kclr.augment.random_gaussian_noise import RandomGaussianNoise
from kclr.augment.random_grayscale import RandomGrayscale
from kclr.augment.random_resized_crop import RandomResizedCrop
from kclr.augment.random_rotation import RandomRotation
from kclr.augment.random_solarize import RandomSolarize
from kclr.augment.sobel_filter import SobelFilter

__all__ = [
    "PHOTOMETRIC_INPUT_RANGE",
    "AugmentationLayer",
    "AugmentationPipeline",
    "CenterCrop",
    "ColorDistortion",
    "DeviceBatch",
    "MultiView",
    "PerView",
    "RandomApply",
    "RandomChoice",
    "RandomCutout",
    "RandomFlip",
    "RandomGaussianBlur",
    "RandomGaussianNoise",
    "RandomGrayscale",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomSolarize",
    "SobelFilter",
    "apply_where",
    "bernoulli",
    "fold",
    "normal",
    "recipes",
    "select",
    "split_stages",
    "uniform",
]
