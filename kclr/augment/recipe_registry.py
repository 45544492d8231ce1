"""Registers the augmentation recipes of `kclr.augment.recipes` in `kclr.registry.recipes`.

A recipe is a factory `recipe(image_size, **arguments)` returning the single-view
augmenter; the run supplies `image_size` (from `data.image_size`) and the spec's
`config` supplies the rest. Recipes that forward `**overrides` to `simclr` are
checked against `simclr`'s arguments.
"""

from __future__ import annotations

import inspect

from kclr.augment import recipes as _recipes
from kclr.registry import recipes

_DESCRIPTIONS = {
    "simclr": "SimCLR ImageNet: crop, flip, colour jitter s=1, grayscale, blur",
    "simclr_cifar": "SimCLR CIFAR-10: colour strength 0.5, no blur",
    "supcon_cifar": "SupCon CIFAR: torchvision crop 0.2-1, jitter 0.4/0.4/0.4/0.1",
    "finetune": "Fine-tuning / linear evaluation: crop and flip",
    "eval": "Evaluation: 0.875 centre crop, bicubic resize",
}


def _signature(function) -> inspect.Signature:
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        return signature
    own = [p for p in params if p.kind is not p.VAR_KEYWORD]
    names = {p.name for p in own}
    extra = [
        p.replace(kind=p.KEYWORD_ONLY)
        for p in inspect.signature(_recipes.simclr).parameters.values()
        if p.name not in names
    ]
    return signature.replace(parameters=[*own, *extra])


for _name, _function in _recipes.RECIPES.items():
    _function.__signature__ = _signature(_function)
    recipes.add(_name, _function, description=_DESCRIPTIONS.get(_name))
