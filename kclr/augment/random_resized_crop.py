"""RandomResizedCrop: the SimCLR (Inception) random crop, batched."""

from __future__ import annotations

import tensorflow as tf

from kclr.augment import functional
from kclr.augment.base import GEOMETRIC, AugmentationLayer
from kclr.registry import augmentations

SEMANTICS = ("inception", "torchvision")
INTERPOLATIONS = ("bicubic", "bilinear")


@augmentations.register(
    "random_resized_crop", description="SimCLR/Inception random crop and resize (batched)"
)
class RandomResizedCrop(AugmentationLayer):
    """Random crop of random area and aspect ratio, resized to `(height, width)`.

    The crop of SimCLR (Chen et al., 2020, "A Simple Framework for Contrastive Learning of
    Visual Representations", Appendix A) as the authors' `crop_and_resize` draws it with
    `tf.image.sample_distorted_bounding_box`: aspect ratio uniform in `aspect_ratio_range`,
    crop height uniform, `attempts` tries, and the whole image as fallback. Because the
    authors pass the whole image as bounding box with `min_object_covered=0.1`, the
    effective minimum area is 0.10, not 0.08; kclr reproduces that distribution with a
    vectorised sampler (all attempts of all images drawn in one call). The crop is then
    resized with bicubic interpolation and no antialiasing, and values may overshoot
    `[0, 1]` until a later clip, as in the official code.

    `semantics="torchvision"` gives torchvision's `RandomResizedCrop` instead: area
    uniform in `area_range`, log-uniform aspect ratio, centre-crop fallback (use
    `attempts=10` and `min_object_covered=0` for torchvision's defaults).

    Args:
        height: output height.
        width: output width (defaults to `height`).
        area_range: range of the crop area as a fraction of the image area.
        aspect_ratio_range: range of the crop aspect ratio (width / height), multiplied
            by the output aspect ratio `width / height` as the official code does.
        min_object_covered: minimum fraction of the image the crop must cover
            (inception semantics only).
        attempts: candidate crops drawn per image.
        semantics: `"inception"` (official SimCLR) or `"torchvision"`.
        interpolation: `"bicubic"` (official) or `"bilinear"`.
        seed: optional int seed.

    Example:

    ```python
    crop = kclr.augment.RandomResizedCrop(224, seed=0)
    views = crop(tf.random.uniform([8, 256, 256, 3]))  # [8, 224, 224, 3]
    ```
    """

    stage = GEOMETRIC

    def __init__(
        self,
        height: int,
        width: int | None = None,
        area_range=(0.08, 1.0),
        aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0),
        min_object_covered: float = 0.1,
        attempts: int = 100,
        semantics: str = "inception",
        interpolation: str = "bicubic",
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        if semantics not in SEMANTICS:
            raise ValueError(
                f"RandomResizedCrop: unknown semantics={semantics!r}; expected one of {SEMANTICS}."
            )
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"RandomResizedCrop: unknown interpolation={interpolation!r}; expected one "
                f"of {INTERPOLATIONS}."
            )
        area_range = tuple(float(a) for a in area_range)
        aspect_ratio_range = tuple(float(a) for a in aspect_ratio_range)
        if not 0.0 < area_range[0] <= area_range[1] <= 1.0:
            raise ValueError(
                f"RandomResizedCrop: area_range must satisfy 0 < low <= high <= 1; received "
                f"{area_range}. Example: area_range=(0.08, 1.0)."
            )
        if not 0.0 < aspect_ratio_range[0] <= aspect_ratio_range[1]:
            raise ValueError(
                f"RandomResizedCrop: aspect_ratio_range must satisfy 0 < low <= high; "
                f"received {aspect_ratio_range}. Example: (3/4, 4/3)."
            )
        self.height = int(height)
        self.width = int(width) if width is not None else int(height)
        self.area_range = area_range
        self.aspect_ratio_range = aspect_ratio_range
        self.min_object_covered = float(min_object_covered)
        self.attempts = int(attempts)
        self.semantics = semantics
        self.interpolation = interpolation

    def sample_boxes(self, seed, batch_size, image_height, image_width):
        """Crop boxes `[batch_size, 4]` int32 `(y, x, h, w)` for images of the given size."""
        ratio = self.width / self.height
        aspect = (self.aspect_ratio_range[0] * ratio, self.aspect_ratio_range[1] * ratio)
        if self.semantics == "inception":
            return functional.sample_inception_boxes(
                seed,
                batch_size,
                image_height,
                image_width,
                area_range=self.area_range,
                aspect_ratio_range=aspect,
                min_object_covered=self.min_object_covered,
                attempts=self.attempts,
            )
        return functional.sample_torchvision_boxes(
            seed,
            batch_size,
            image_height,
            image_width,
            area_range=self.area_range,
            aspect_ratio_range=aspect,
            attempts=self.attempts,
        )

    def get_random_transformation(self, images, seed, device=None):
        shape = tf.shape(images)
        return self.sample_boxes(seed, shape[0], shape[1], shape[2])

    def transform_images(self, images, transformation, device=None):
        return functional.crop_and_resize(
            images, transformation, (self.height, self.width), self.interpolation
        )

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-3], self.height, self.width, input_shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "area_range": list(self.area_range),
            "aspect_ratio_range": list(self.aspect_ratio_range),
            "min_object_covered": self.min_object_covered,
            "attempts": self.attempts,
            "semantics": self.semantics,
            "interpolation": self.interpolation,
        }
