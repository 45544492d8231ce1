"""Augmentation recipes: the single-view augmenters of SimCLR and SupCon, and evaluation.

A recipe is a function `recipe(image_size, **arguments)` returning the single-view
`AugmentationPipeline` on `[B, H, W, 3]`; wrap it in `kclr.augment.MultiView` for
several views. An asymmetric recipe (`byol`) returns the `MultiView` itself, one
pipeline per view: its views share crop and flip and differ in the photometric steps,
and a run's `data.views` must equal its number of views. The recipes below are entries
of `kclr.registry.recipes` like a plugin's: build one by name with `kclr.registry.recipes.get("simclr", image_size=224)`
or from a spec with `kclr.spec.build`. A recipe declares `image_size` as the argument a
run supplies (`run_arguments`); a recipe that forwards `**overrides` to another one
names it in `extends` (its registered name or the function), so its accepted
arguments are that recipe's too.

| name | what | source |
|---|---|---|
| `simclr` | Inception crop, flip, colour jitter s=1.0 (p=0.8), grayscale (p=0.2), blur (p=0.5) | SimCLR ImageNet |
| `simclr_cifar` | same, s=0.5, no blur | SimCLR CIFAR-10 |
| `supcon_cifar` | crop area 0.2-1 (torchvision), flip, jitter 0.4/0.4/0.4/0.1 (p=0.8), grayscale (p=0.2) | SupCon CIFAR |
| `byol` | one recipe per view: crop 0.08-1, flip, jitter 0.4/0.4/0.2/0.1 (p=0.8), grayscale (p=0.2); blur p=1.0 / 0.1, solarize p=0 / 0.2 | BYOL; MoCo v3's loader |
| `finetune` | Inception crop, flip | SimCLR fine-tuning / linear evaluation |
| `eval` | 0.875 aspect-preserving centre crop, bicubic (no crop at <= 32 px) | SimCLR evaluation |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kclr.augment.center_crop import CenterCrop
from kclr.augment.color_distortion import ColorDistortion
from kclr.augment.multi_view import MultiView
from kclr.augment.pipeline import AugmentationPipeline
from kclr.augment.random_flip import RandomFlip
from kclr.augment.random_gaussian_blur import RandomGaussianBlur
from kclr.augment.random_grayscale import RandomGrayscale
from kclr.augment.random_resized_crop import RandomResizedCrop
from kclr.augment.random_solarize import RandomSolarize
from kclr.registry import recipes as registry_recipes


def recipe(
    name: str, description: str, extends: str | Callable[..., Any] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Registers a recipe function in `kclr.registry.recipes`, run argument `image_size`.

    `extends` is the recipe the function's `**overrides` go to: its registered name or
    the function itself.
    """

    def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
        function.run_arguments = ("image_size",)
        function.extends = extends
        return registry_recipes.register(name, description=description)(function)

    return decorator


@recipe("simclr", "SimCLR ImageNet: crop, flip, colour jitter s=1, grayscale, blur")
def simclr(
    image_size: int,
    color_jitter_strength: float = 1.0,
    brightness: float | None = None,
    contrast: float | None = None,
    saturation: float | None = None,
    hue: float | None = None,
    color_jitter_probability: float = 0.8,
    brightness_impl: str = "simclrv2",
    random_order: bool = True,
    grayscale_probability: float = 0.2,
    area_range=(0.08, 1.0),
    aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0),
    min_object_covered: float = 0.1,
    crop_attempts: int = 100,
    crop_semantics: str = "inception",
    interpolation: str = "bicubic",
    flip_probability: float = 0.5,
    blur: bool = True,
    blur_probability: float = 0.5,
    blur_sigma_range=(0.1, 2.0),
    per_image_sigma: bool = True,
    seed: int | None = None,
) -> AugmentationPipeline:
    """The SimCLR pretraining augmentation of one view (Chen et al., 2020, Appendix A).

    Crop and resize, horizontal flip, colour jitter, grayscale, clip, Gaussian blur, clip:
    the authors' `preprocess_for_train` followed by the in-model `batch_random_blur`.
    kclr draws the blur sigma per image (the paper) rather than per batch (the authors'
    code): `per_image_sigma=False` restores the latter.

    Args:
        image_size: output side in pixels.
        color_jitter_strength: strength `s`; 0 removes the colour jitter step.
        (other args): see `RandomResizedCrop`, `ColorDistortion`, `RandomGrayscale`,
            `RandomGaussianBlur`.

    Example:

    ```python
    augmenter = kclr.augment.recipes.simclr(224, seed=0)
    ```
    """
    steps: list[Any] = [
        RandomResizedCrop(
            image_size,
            area_range=area_range,
            aspect_ratio_range=aspect_ratio_range,
            min_object_covered=min_object_covered,
            attempts=crop_attempts,
            semantics=crop_semantics,
            interpolation=interpolation,
        ),
        RandomFlip("horizontal", probability=flip_probability),
    ]
    if color_jitter_strength > 0 or any(v for v in (brightness, contrast, saturation, hue)):
        steps.append(
            ColorDistortion(
                strength=color_jitter_strength,
                brightness=brightness,
                contrast=contrast,
                saturation=saturation,
                hue=hue,
                probability=color_jitter_probability,
                random_order=random_order,
                impl=brightness_impl,
            )
        )
        if grayscale_probability > 0:
            steps.append(RandomGrayscale(probability=grayscale_probability))
    if blur:
        steps.append(
            RandomGaussianBlur(
                sigma_range=blur_sigma_range,
                probability=blur_probability,
                per_image_sigma=per_image_sigma,
            )
        )
    return AugmentationPipeline(steps, clip=True, seed=seed, name="simclr_augmenter")


@recipe("simclr_cifar", "SimCLR CIFAR-10: colour strength 0.5, no blur", extends=simclr)
def simclr_cifar(image_size: int = 32, **overrides: Any) -> AugmentationPipeline:
    """SimCLR on CIFAR-10: colour strength 0.5, no blur (Chen et al., 2020, Appendix B.9).

    Example:

    ```python
    augmenter = kclr.augment.recipes.simclr_cifar(32)
    ```
    """
    overrides.setdefault("color_jitter_strength", 0.5)
    overrides.setdefault("blur", False)
    return simclr(image_size, **overrides)


@recipe(
    "supcon_cifar", "SupCon CIFAR: torchvision crop 0.2-1, jitter 0.4/0.4/0.4/0.1", extends=simclr
)
def supcon_cifar(image_size: int = 32, **overrides: Any) -> AugmentationPipeline:
    """SupCon on CIFAR (Khosla et al., 2020; HobbitLong/SupContrast `TwoCropTransform`).

    torchvision-style crop of area 0.2-1 (log-uniform aspect, 10 attempts), flip, colour
    jitter 0.4/0.4/0.4/0.1 with p=0.8, grayscale p=0.2, no blur. kclr applies the jitter
    with TensorFlow's contrast/saturation/hue definitions (the authors use PIL's), and
    leaves out the authors' mean/std normalisation (kclr models take `[0, 1]` input).

    Example:

    ```python
    augmenter = kclr.augment.recipes.supcon_cifar(32)
    ```
    """
    defaults = dict(
        area_range=(0.2, 1.0),
        crop_semantics="torchvision",
        crop_attempts=10,
        min_object_covered=0.0,
        color_jitter_strength=0.5,
        brightness=0.4,
        contrast=0.4,
        saturation=0.4,
        hue=0.1,
        blur=False,
    )
    return simclr(image_size, **{**defaults, **overrides})


@recipe(
    "byol", "BYOL / MoCo v3: asymmetric views, blur 1.0 / 0.1, solarize 0 / 0.2", extends=simclr
)
def byol(
    image_size: int,
    blur_probabilities=(1.0, 0.1),
    solarize_probabilities=(0.0, 0.2),
    solarize_threshold: float = 0.5,
    seed: int | None = None,
    **overrides: Any,
) -> MultiView:
    """BYOL's asymmetric pair of views (Grill et al., 2020, Table 6), as MoCo v3's loader.

    Both views: Inception crop (area 0.08-1), flip, colour jitter brightness 0.4,
    contrast 0.4, saturation 0.2, hue 0.1 with p=0.8, grayscale p=0.2, Gaussian blur
    (sigma 0.1-2); view 1 blurs with p=1.0, view 2 with p=0.1 and solarizes (threshold
    0.5, PIL's 128 of 255) with p=0.2. facebookresearch/moco-v3 `main_moco.py` builds
    the same pair (`augmentation1`, `augmentation2`). The jitter is applied in kclr's
    random order, as `simclr` does; torchvision's `ColorJitter` also permutes its ops. The
    blur is SimCLR's (a kernel of 10% of the side), where the authors' PIL blur has no
    truncated kernel.

    Args:
        image_size: output side in pixels.
        blur_probabilities: blur probability of each view (their number is the number
            of views).
        solarize_probabilities: solarize probability of each view.
        solarize_threshold: pixels at or above it are inverted.
        seed: optional int seed.
        **overrides: arguments of `simclr`, the same for every view (e.g. `area_range`).

    Returns:
        A `kclr.augment.MultiView` with one pipeline per view.

    Example:

    ```python
    two_views = kclr.augment.recipes.byol(32, seed=0)
    two_views(tf.random.uniform([4, 48, 48, 3]), training=True).shape  # (4, 2, 32, 32, 3)
    ```
    """
    blur_probabilities = [float(p) for p in blur_probabilities]
    solarize_probabilities = [float(p) for p in solarize_probabilities]
    if len(blur_probabilities) != len(solarize_probabilities) or len(blur_probabilities) < 2:
        raise ValueError(
            "byol: `blur_probabilities` and `solarize_probabilities` give one probability "
            f"per view and must have the same length (at least 2); received "
            f"{blur_probabilities} and {solarize_probabilities}."
        )
    for key in ("blur_probability", "blur"):
        if key in overrides:
            raise ValueError(
                f"byol: `{key}` is set per view by `blur_probabilities`; received "
                f"{key}={overrides[key]!r}. Use augmentation.config.blur_probabilities."
            )
    defaults = dict(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
    arguments = {**defaults, **overrides}
    views = []
    for view, (blur_p, solarize_p) in enumerate(
        zip(blur_probabilities, solarize_probabilities, strict=True)
    ):
        pipeline = simclr(
            image_size, blur=blur_p > 0, blur_probability=blur_p, seed=None, **arguments
        )
        steps = list(pipeline.steps)
        if solarize_p > 0:
            steps.append(RandomSolarize(solarize_threshold, probability=solarize_p))
        views.append(AugmentationPipeline(steps, clip=True, name=f"byol_view{view + 1}"))
    return MultiView(views, views=len(views), seed=seed, name="byol_views")


@recipe("finetune", "Fine-tuning / linear evaluation: crop and flip", extends=simclr)
def finetune(image_size: int, **overrides: Any) -> AugmentationPipeline:
    """Fine-tuning / linear-evaluation training augmentation: crop and flip only.

    The authors' `preprocess_for_train` without colour distortion (Chen et al., 2020).

    Example:

    ```python
    augmenter = kclr.augment.recipes.finetune(224)
    ```
    """
    defaults = dict(color_jitter_strength=0.0, blur=False)
    return simclr(image_size, **{**defaults, **overrides})


@recipe("eval", "Evaluation: 0.875 centre crop, bicubic resize")
def eval(  # noqa: A001 - the recipe's public name
    image_size: int,
    crop_proportion: float | None = None,
    interpolation: str = "bicubic",
    seed: int | None = None,
) -> AugmentationPipeline:
    """The SimCLR evaluation preprocessing: 0.875 centre crop, bicubic resize, clip.

    At `image_size <= 32` (CIFAR) the authors use no test crop, so `crop_proportion`
    defaults to 1.0 there (resize only) and to 0.875 otherwise.

    Example:

    ```python
    preprocess = kclr.augment.recipes.eval(224)
    ```
    """
    if crop_proportion is None:
        crop_proportion = 1.0 if image_size <= 32 else 0.875
    return AugmentationPipeline(
        [CenterCrop(image_size, crop_proportion=crop_proportion, interpolation=interpolation)],
        clip=True,
        seed=seed,
        name="eval_preprocessor",
    )
