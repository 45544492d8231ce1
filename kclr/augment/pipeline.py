"""AugmentationPipeline: a sequence of augmentation layers in two declared stages."""

from __future__ import annotations

import keras
import tensorflow as tf

from kclr.augment.base import GEOMETRIC, PHOTOMETRIC, AugmentationLayer, as_layer, fold, stage_of
from kclr.augment.random_apply import call_layer
from kclr.registry import augmentations


@augmentations.register(
    "augmentation_pipeline", description="A sequence of augmentation layers (a recipe)"
)
class AugmentationPipeline(AugmentationLayer):
    """Applies `steps` in order, optionally clipping the result to `[0, 1]`.

    What a recipe of `kclr.registry.recipes` returns. Each step receives its own stateless
    seed derived from the pipeline's, so one seed fixes the whole recipe.

    A recipe has two stages, read from each step's `stage` attribute (see
    `kclr.augment.AugmentationLayer`): the geometric stage (crop, flip), which kclr's
    data pipeline runs at decode time on uint8, and the photometric stage (colour,
    grayscale, blur, solarize, plugin layers), which runs on the host or on the
    accelerator (`kclr.data.pretraining_dataset(photometric=...)`). `geometric_stage()`
    and `photometric_stage()` return them as pipelines of their own; geometric steps
    must come before photometric ones. The final clip belongs to the photometric stage.

    Args:
        steps: list of Keras layers (or config dicts / registered names).
        clip: clip the output to `[0, 1]` (the official final `clip_by_value`).
        seed: optional int seed.

    Example:

    ```python
    augmenter = kclr.augment.AugmentationPipeline(
        [kclr.augment.RandomResizedCrop(32), kclr.augment.RandomFlip()], seed=0
    )
    augmenter.photometric  # [] (crop and flip are geometric)
    ```
    """

    def __init__(self, steps, clip=True, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.steps = [as_layer(step) for step in steps]
        self.clip = bool(clip)

    # ------------------------------------------------------------------- stages
    @property
    def stage(self):
        """Geometric when every step is geometric, else photometric."""
        return GEOMETRIC if self.steps and not self.photometric else PHOTOMETRIC

    @property
    def geometric(self) -> list:
        """The geometric steps (crop, flip), in order."""
        return self._split()[0]

    @property
    def photometric(self) -> list:
        """The photometric steps (colour, grayscale, blur, ...), in order."""
        return self._split()[1]

    def _split(self):
        stages = [stage_of(step) for step in self.steps]
        first = stages.index(PHOTOMETRIC) if PHOTOMETRIC in stages else len(stages)
        late = [s for s, st in zip(self.steps, stages, strict=True)][first:]
        misplaced = [s for s in late if stage_of(s) == GEOMETRIC]
        if misplaced:
            raise ValueError(
                f"{self.name}: the geometric step {type(misplaced[0]).__name__} comes after "
                f"the photometric step {type(self.steps[first]).__name__}. Geometric steps "
                "(crops, flips) run first, on the host at decode time; put them before "
                "the photometric ones (or give the layer `stage = 'photometric'`)."
            )
        return self.steps[:first], self.steps[first:]

    def geometric_stage(self) -> AugmentationPipeline:
        """The geometric steps as a pipeline (no clip)."""
        return AugmentationPipeline(self.geometric, clip=False, name=f"{self.name}_geometric")

    def photometric_stage(self) -> AugmentationPipeline:
        """The photometric steps as a pipeline, with this pipeline's final clip."""
        return AugmentationPipeline(
            self.photometric, clip=self.clip, name=f"{self.name}_photometric"
        )

    # ---------------------------------------------------------------- application
    def get_random_transformation(self, images, seed, device=None):
        return seed

    def transform_images(self, images, transformation, device=None):
        for i, step in enumerate(self.steps):
            images = call_layer(step, images, fold(transformation, i + 1), device=device)
        if self.clip:
            images = tf.clip_by_value(images, 0.0, 1.0)
        return images

    def call(self, images, training=None, seed=None, device=None):
        if training is not None and not isinstance(training, tf.Tensor) and not training:
            # Deterministic steps (e.g. CenterCrop) still apply at inference.
            for step in self.steps:
                images = step(images, training=False)
            return images
        return super().call(images, training=training, seed=seed, device=device)

    def compute_output_shape(self, input_shape):
        for step in self.steps:
            input_shape = step.compute_output_shape(input_shape)
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "steps": [keras.saving.serialize_keras_object(step) for step in self.steps],
            "clip": self.clip,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["steps"] = [as_layer(step) for step in config["steps"]]
        return cls(**config)


def split_stages(augmenter) -> tuple[list, list]:
    """`(geometric steps, photometric steps)` of a recipe or of a single layer.

    An `AugmentationPipeline` gives its two stages; a layer with a `stages()` method
    (`MultiView` of one recipe per view: the shared crop and flip, then one `PerView`
    step) gives those; any other layer is one step of the stage it declares (`stage`
    attribute, photometric when absent).

    Example:

    ```python
    geometric, photometric = split_stages(kclr.registry.recipes.get("simclr", image_size=224))
    ```
    """
    if isinstance(augmenter, AugmentationPipeline):
        return augmenter.geometric, augmenter.photometric
    if callable(getattr(augmenter, "stages", None)):  # a layer of stages: MultiView
        return augmenter.stages()
    if stage_of(augmenter) == GEOMETRIC:
        return [augmenter], []
    return [], [augmenter]
