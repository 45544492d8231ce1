"""The single-view augmenter of a data pipeline, from what a caller passes as `recipe`.

`kclr.data.pretraining_dataset`, `kclr.data.labelled_dataset` and
`kclr.data.photometric_stage` accept the same forms as a run configuration's
`augmentation` section: a registered recipe name (a built-in or a plugin's), a spec
`{"name": ..., "config": {...}}`, or a built Keras layer.
"""

from __future__ import annotations

from typing import Any


def augmenter(recipe: Any, image_size: int, overrides: dict[str, Any]) -> Any:
    """The augmenter `recipe` names, built for `image_size` with `overrides` applied.

    Args:
        recipe: a registered recipe name, a recipe spec or a Keras layer on `[B, H, W, 3]`.
        image_size: the output side, given to recipes that declare it a run argument.
        overrides: recipe arguments (added to a spec's `config`).

    Raises:
        ValueError: overrides with a built layer, an unknown recipe or argument.
        TypeError: `recipe` is neither a name, a spec nor a callable layer.
    """
    from kclr import registry, spec

    if isinstance(recipe, str):
        recipe = {"name": recipe, "config": {}}
    if isinstance(recipe, dict):
        value = spec.normalize(recipe, "recipe")
        value["config"].update(overrides)
        return spec.build(registry.recipes, value, "recipe", run={"image_size": image_size})
    if overrides:
        raise ValueError(
            f"Recipe overrides {sorted(overrides)} need a recipe name, but recipe is a "
            f"{type(recipe).__name__} instance; configure the layer directly instead."
        )
    if not callable(recipe):
        raise TypeError(
            f"recipe must be a recipe name, a spec or a Keras layer; received {recipe!r}. "
            f"Registered recipes: {', '.join(registry.recipes.names())}."
        )
    return recipe
