"""MultiView: N independent augmented views of every image."""

from __future__ import annotations

import keras
import tensorflow as tf

from kclr.augment.base import AugmentationLayer, as_layer, fold
from kclr.augment.per_view import PerView
from kclr.augment.pipeline import AugmentationPipeline, split_stages
from kclr.augment.random_apply import call_layer
from kclr.registry import augmentations


@augmentations.register("multi_view", description="N independently augmented views per image")
class MultiView(AugmentationLayer):
    """Maps images `[B, H, W, 3]` to `views` augmented views `[B, views, H', W', 3]`.

    SimCLR and SupCon train on two views per image, each drawn independently from the same
    augmentation (`TwoCropTransform` in SupCon, two calls of `preprocess_for_train` in
    SimCLR). With one augmenter, the batch is repeated `views` times and augmented in a
    single batched call, so every view gets its own random parameters. A list of
    augmenters gives one augmenter per view (asymmetric views, as in BYOL).

    Args:
        augmenter: a Keras layer on `[B, H, W, 3]` (e.g. a recipe), or a list of
            `views` layers.
        views: number of views.
        seed: optional int seed.

    Example:

    ```python
    from kclr.augment import MultiView, recipes

    two_views = MultiView(kclr.registry.recipes.get("simclr_cifar", image_size=32), views=2)
    views = two_views(tf.random.uniform([8, 32, 32, 3]))  # [8, 2, 32, 32, 3]
    ```
    """

    def __init__(self, augmenter, views=2, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if int(views) < 1:
            raise ValueError(f"MultiView: views must be >= 1; received {views}.")
        self.views = int(views)
        if isinstance(augmenter, (list, tuple)):
            if len(augmenter) != self.views:
                raise ValueError(
                    f"MultiView: received {len(augmenter)} augmenters for views={views}; "
                    "pass one augmenter, or one per view."
                )
            self.augmenters = [as_layer(a) for a in augmenter]
        else:
            self.augmenters = [as_layer(augmenter)]

    # ------------------------------------------------------------------- stages
    @property
    def asymmetric(self) -> bool:
        """True when each view has its own augmenter."""
        return len(self.augmenters) > 1

    def stages(self) -> tuple[list, list]:
        """`(geometric steps, photometric steps)`, as `kclr.augment.split_stages` gives them.

        Asymmetric views share their geometric stage (kclr's data pipeline crops every view
        of a file at decode time with one crop layer) and differ in the photometric one,
        which becomes one `kclr.augment.PerView` step.
        """
        if not self.asymmetric:
            return split_stages(self.augmenters[0])
        split = [split_stages(a) for a in self.augmenters]
        geometric = split[0][0]
        configs = [[_config(step) for step in g] for g, _ in split]
        for view, config in enumerate(configs[1:], start=2):
            if config != configs[0]:
                raise ValueError(
                    f"{self.name}: view {view}'s crop and flip differ from view 1's. "
                    "Asymmetric views share their geometric steps (crop, flip: one crop per "
                    "file at decode time) and differ only in the photometric ones (colour, "
                    "blur, solarize, ...); give every view the same crop and flip."
                )
        return geometric, [PerView([self._photometric(a) for a in self.augmenters])]

    @staticmethod
    def _photometric(augmenter):
        if isinstance(augmenter, AugmentationPipeline):
            return augmenter.photometric_stage()
        return AugmentationPipeline(split_stages(augmenter)[1], clip=False)

    # ---------------------------------------------------------------- application
    def get_random_transformation(self, images, seed, device=None):
        return seed

    def transform_images(self, images, transformation, device=None):
        batch = tf.shape(images)[0]
        if len(self.augmenters) == 1:
            repeated = tf.repeat(images, self.views, axis=0)  # [B*V, H, W, 3], image-major
            out = call_layer(self.augmenters[0], repeated, fold(transformation, 1), device=device)
            shape = tf.shape(out)
            out = tf.reshape(out, tf.concat([[batch, self.views], shape[1:]], axis=0))
        else:
            out = tf.stack(
                [
                    call_layer(augmenter, images, fold(transformation, i + 1), device=device)
                    for i, augmenter in enumerate(self.augmenters)
                ],
                axis=1,
            )
        return out

    def call(self, images, training=None, seed=None, device=None):
        if training is not None and not isinstance(training, tf.Tensor) and not training:
            views = [augmenter(images, training=False) for augmenter in self.augmenters]
            if len(views) == 1:
                views = views * self.views
            return tf.stack(views, axis=1)
        return super().call(images, training=training, seed=seed, device=device)

    def compute_output_shape(self, input_shape):
        out = self.augmenters[0].compute_output_shape(input_shape)
        return (out[0], self.views, *out[1:])

    def get_config(self):
        augmenters = [keras.saving.serialize_keras_object(a) for a in self.augmenters]
        return {
            **super().get_config(),
            "augmenter": augmenters[0] if len(augmenters) == 1 else augmenters,
            "views": self.views,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        augmenter = config["augmenter"]
        if isinstance(augmenter, list):
            config["augmenter"] = [as_layer(a) for a in augmenter]
        else:
            config["augmenter"] = as_layer(augmenter)
        return cls(**config)


def _config(layer):
    """A layer's config without its name and seed (two equal crops may differ in those)."""
    config = dict(layer.get_config())
    config.pop("name", None)
    config.pop("seed", None)
    return type(layer).__name__, config
