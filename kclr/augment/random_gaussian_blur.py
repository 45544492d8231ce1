"""RandomGaussianBlur: separable Gaussian blur with per-image sigma, p=0.5."""

from __future__ import annotations

import tensorflow as tf

from kclr.augment import functional
from kclr.augment.base import AugmentationLayer, apply_where, bernoulli, uniform
from kclr.registry import augmentations


@augmentations.register(
    "random_gaussian_blur", description="Gaussian blur, kernel 10% of side, sigma U[0.1, 2], p=0.5"
)
class RandomGaussianBlur(AugmentationLayer):
    """Gaussian blur with a kernel of 10% of the image side and sigma in `[0.1, 2.0]`.

    SimCLR's blur (Chen et al., 2020, Appendix A; the authors' `batch_random_blur`):
    kernel size `height // 10` (22 at 224 px, radius 11, 23 taps), separable, zero
    `'SAME'` padding, applied to each image with probability 0.5, then clipped.

    kclr differs from the authors' code on one point, following the paper instead: sigma
    is drawn per image (`per_image_sigma=True`). The authors' code draws one sigma per
    call, shared by the whole per-replica batch; pass `per_image_sigma=False` for that.
    All images are blurred in a single depthwise convolution with per-image kernels.

    Args:
        kernel_size: kernel size in pixels; `None` uses `kernel_fraction * height`.
        kernel_fraction: kernel size as a fraction of the image height (0.1).
        sigma_range: sigma is uniform in this range.
        probability: probability per image.
        per_image_sigma: one sigma per image (paper) or per batch (authors' code).
        seed: optional int seed.

    Example:

    ```python
    blur = kclr.augment.RandomGaussianBlur(seed=0)
    out = blur(tf.random.uniform([4, 224, 224, 3]))
    ```
    """

    def __init__(
        self,
        kernel_size: int | None = None,
        kernel_fraction: float = 0.1,
        sigma_range=(0.1, 2.0),
        probability: float = 0.5,
        per_image_sigma: bool = True,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        sigma_range = tuple(float(s) for s in sigma_range)
        if not 0.0 < sigma_range[0] <= sigma_range[1]:
            raise ValueError(
                f"RandomGaussianBlur: sigma_range must satisfy 0 < low <= high; received "
                f"{sigma_range}. Example: (0.1, 2.0)."
            )
        self.kernel_size = None if kernel_size is None else int(kernel_size)
        self.kernel_fraction = float(kernel_fraction)
        self.sigma_range = sigma_range
        self.probability = float(probability)
        self.per_image_sigma = bool(per_image_sigma)

    def _kernel_size(self, images):
        if self.kernel_size is not None:
            return self.kernel_size
        height = images.shape[1]
        if height is None:
            raise ValueError(
                "RandomGaussianBlur needs a static image height to size its kernel; "
                f"received shape {images.shape}. Pass `kernel_size=` explicitly."
            )
        return int(height * self.kernel_fraction)

    def get_random_transformation(self, images, seed, device=None):
        batch = tf.shape(images)[0]
        if self.per_image_sigma:
            sigma = uniform(seed, [batch], *self.sigma_range, salt=1, device=device)
        else:
            sigma = tf.fill([batch], uniform(seed, [], *self.sigma_range, salt=1, device=device))
        return {
            "sigma": sigma,
            "apply": bernoulli(seed, batch, self.probability, salt=0, device=device),
        }

    def transform_images(self, images, transformation, device=None):
        size = self._kernel_size(images)
        if size // 2 == 0:  # a 1-tap kernel is the identity
            return images

        def blur(selected, sigma):
            taps = functional.gaussian_taps(sigma, size)
            return tf.clip_by_value(functional.separable_blur(selected, taps), 0.0, 1.0)

        return apply_where(
            transformation["apply"], blur, images, transformation["sigma"], device=device
        )

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "kernel_fraction": self.kernel_fraction,
            "sigma_range": list(self.sigma_range),
            "probability": self.probability,
            "per_image_sigma": self.per_image_sigma,
        }
