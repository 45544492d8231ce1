"""CenterCrop: the official SimCLR evaluation crop (aspect-preserving 0.875 centre crop)."""

from __future__ import annotations

import tensorflow as tf

from kclr.augment import functional
from kclr.augment.base import GEOMETRIC, AugmentationLayer
from kclr.registry import augmentations


@augmentations.register("center_crop", description="SimCLR eval centre crop (0.875) and resize")
class CenterCrop(AugmentationLayer):
    """Aspect-preserving centre crop of `crop_proportion`, resized to `(height, width)`.

    The evaluation preprocessing of SimCLR (`preprocess_for_eval`): keep `crop_proportion`
    (0.875) of the shorter side for a square target, offset `((size - crop) + 1) // 2`,
    then bicubic resize without antialiasing and clip to `[0, 1]`. Deterministic, so it is
    applied in training and inference alike. `crop_proportion=1.0` only resizes.

    Args:
        height: output height.
        width: output width (defaults to `height`).
        crop_proportion: fraction of the shorter side kept.
        interpolation: `"bicubic"` (official) or `"bilinear"`.
        seed: unused (kept for a uniform config).

    Example:

    ```python
    images = kclr.augment.CenterCrop(224)(tf.random.uniform([2, 256, 341, 3]))
    ```
    """

    stage = GEOMETRIC

    always_apply = True

    def __init__(
        self,
        height: int,
        width: int | None = None,
        crop_proportion: float = 0.875,
        interpolation: str = "bicubic",
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        if not 0.0 < crop_proportion <= 1.0:
            raise ValueError(
                f"CenterCrop: crop_proportion must be in (0, 1]; received {crop_proportion}."
            )
        self.height = int(height)
        self.width = int(width) if width is not None else int(height)
        self.crop_proportion = float(crop_proportion)
        self.interpolation = interpolation

    def box(self, image_height, image_width):
        """The crop box `(y, x, h, w)` (int32 `[4]`) for an image of the given size."""
        return functional.center_crop_box(
            image_height, image_width, self.crop_proportion, self.height / self.width
        )

    def sample_boxes(self, seed, batch_size, image_height, image_width):
        """Crop boxes `[batch_size, 4]` int32 `(y, x, h, w)`: the one centre box, repeated.

        With `RandomResizedCrop.sample_boxes`, what the data pipeline calls to crop at
        decode time (`interpolation` is the resize method).
        """
        return tf.tile(self.box(image_height, image_width)[None], [batch_size, 1])

    def get_random_transformation(self, images, seed, device=None):
        shape = tf.shape(images)
        return self.sample_boxes(seed, shape[0], shape[1], shape[2])

    def transform_images(self, images, transformation, device=None):
        out = functional.crop_and_resize(
            images, transformation, (self.height, self.width), self.interpolation
        )
        return tf.clip_by_value(out, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-3], self.height, self.width, input_shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "crop_proportion": self.crop_proportion,
            "interpolation": self.interpolation,
        }
