"""The image operations of RandAugment / AutoAugment, as Keras core layers at a fixed level.

Levels follow the papers' 0-10 scale. Images are float in [0, 1].
"""

from __future__ import annotations

import keras

MAX_LEVEL = 10.0
VALUE_RANGE = (0, 1)
GREY = 0.5


def make_op(name: str, level: float, seed: int | None = None) -> keras.layers.Layer | None:
    """Returns a Keras layer applying operation `name` at `level` (0-10); None for identity."""
    m = float(level) / MAX_LEVEL
    geometric = {"fill_mode": "constant", "fill_value": GREY, "seed": seed}
    if name == "identity":
        return None
    if name == "auto_contrast":
        return keras.layers.AutoContrast(value_range=VALUE_RANGE)
    if name == "equalize":
        return keras.layers.Equalization(value_range=VALUE_RANGE)
    if name == "invert":
        return keras.layers.RandomInvert(factor=1.0, value_range=VALUE_RANGE, seed=seed)
    if name == "rotate":
        return keras.layers.RandomRotation(factor=30.0 / 360.0 * m, **geometric)
    if name == "shear_x":
        return keras.layers.RandomShear(x_factor=0.3 * m, **geometric)
    if name == "shear_y":
        return keras.layers.RandomShear(y_factor=0.3 * m, **geometric)
    if name == "translate_x":
        return keras.layers.RandomTranslation(0.0, 0.45 * m, **geometric)
    if name == "translate_y":
        return keras.layers.RandomTranslation(0.45 * m, 0.0, **geometric)
    if name == "solarize":
        threshold = 1.0 - m
        return keras.layers.Solarization(
            threshold_factor=(threshold, threshold), value_range=VALUE_RANGE, seed=seed
        )
    if name == "posterize":
        bits = max(1, int(round(8 - 4 * m)))
        return keras.layers.RandomPosterization(
            factor=(bits, bits), value_range=VALUE_RANGE, seed=seed
        )
    if name == "color":
        return keras.layers.RandomColorDegeneration(
            factor=(0.0, 0.9 * m), value_range=VALUE_RANGE, seed=seed
        )
    if name == "contrast":
        return keras.layers.RandomContrast(factor=0.9 * m, value_range=VALUE_RANGE, seed=seed)
    if name == "brightness":
        return keras.layers.RandomBrightness(factor=0.45 * m, value_range=VALUE_RANGE, seed=seed)
    if name == "sharpness":
        return keras.layers.RandomSharpness(
            factor=(0.0, 0.9 * m), value_range=VALUE_RANGE, seed=seed
        )
    raise ValueError(f"Unknown operation {name!r}. Expected one of: {', '.join(OPERATIONS)}.")


OPERATIONS = (
    "identity",
    "auto_contrast",
    "equalize",
    "invert",
    "rotate",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
    "solarize",
    "posterize",
    "color",
    "contrast",
    "brightness",
    "sharpness",
)

# RandAugment's list (no invert, as in the paper's ImageNet search space).
RANDAUGMENT_OPERATIONS = tuple(op for op in OPERATIONS if op != "invert")

# AutoAugment ImageNet policy: 25 sub-policies of two (operation, probability, level) steps.
IMAGENET_POLICY = (
    (("posterize", 0.4, 8), ("rotate", 0.6, 9)),
    (("solarize", 0.6, 5), ("auto_contrast", 0.6, 5)),
    (("equalize", 0.8, 8), ("equalize", 0.6, 3)),
    (("posterize", 0.6, 7), ("posterize", 0.6, 6)),
    (("equalize", 0.4, 7), ("solarize", 0.2, 4)),
    (("equalize", 0.4, 4), ("rotate", 0.8, 8)),
    (("solarize", 0.6, 3), ("equalize", 0.6, 7)),
    (("posterize", 0.8, 5), ("equalize", 1.0, 2)),
    (("rotate", 0.2, 3), ("solarize", 0.6, 8)),
    (("equalize", 0.6, 8), ("posterize", 0.4, 6)),
    (("rotate", 0.8, 8), ("color", 0.4, 0)),
    (("rotate", 0.4, 9), ("equalize", 0.6, 2)),
    (("equalize", 0.0, 7), ("equalize", 0.8, 8)),
    (("invert", 0.6, 4), ("equalize", 1.0, 8)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("rotate", 0.8, 8), ("color", 1.0, 2)),
    (("color", 0.8, 8), ("solarize", 0.8, 7)),
    (("sharpness", 0.4, 7), ("invert", 0.6, 8)),
    (("shear_x", 0.6, 5), ("equalize", 1.0, 9)),
    (("color", 0.4, 0), ("equalize", 0.6, 3)),
    (("equalize", 0.4, 7), ("solarize", 0.2, 4)),
    (("solarize", 0.6, 5), ("auto_contrast", 0.6, 5)),
    (("invert", 0.6, 4), ("equalize", 1.0, 8)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("equalize", 0.8, 8), ("equalize", 0.6, 3)),
)
