"""Preview grids of augmented views (`kclr augment preview`)."""

from __future__ import annotations

import math
import os

import tensorflow as tf

from kclr import spec
from kclr.augment.multi_view import MultiView
from kclr.augment.recipes import eval as eval_recipe
from kclr.registry import recipes


def preview_grid(
    image_path: str | os.PathLike,
    recipe: str | dict = "simclr",
    views: int = 8,
    image_size: int = 224,
    columns: int | None = None,
    seed: int = 0,
    padding: int = 4,
) -> tf.Tensor:
    """Returns a uint8 `[H, W, 3]` grid: the resized original, then `views` augmented views.

    Args:
        image_path: an image file (JPEG, PNG, GIF, BMP).
        recipe: a registered recipe name (a built-in or a plugin's) or a recipe spec
            `{"name": ..., "config": {...}}`. The views of an asymmetric recipe (`byol`)
            alternate: view 1, view 2, view 1, ...
        views: number of augmented views.
        image_size: side of each tile.
        columns: tiles per row (about square by default).
        seed: augmentation seed.
        padding: white pixels between tiles.

    Example:

    ```python
    grid = kclr.augment.preview.preview_grid("cat.jpg", recipe="simclr", views=8)
    tf.io.write_file("grid.png", tf.io.encode_png(grid))
    ```
    """
    data = tf.io.read_file(str(image_path))
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)
    built = spec.build(recipes, recipe, "recipe", run={"image_size": image_size})
    if isinstance(built, MultiView):  # one pipeline per view: tiles take them in turn
        rounds = math.ceil(views / built.views)
        augmenter = MultiView(built.augmenters, views=built.views, seed=seed)
        augmented = augmenter(tf.repeat(image[None], rounds, axis=0), training=True)
        augmented = tf.reshape(augmented, [-1, image_size, image_size, 3])[:views]
    else:
        augmenter = MultiView(built, views=views, seed=seed)
        augmented = augmenter(image[None], training=True)[0]  # [views, S, S, 3]
    original = eval_recipe(image_size, crop_proportion=1.0)(image[None])
    tiles = tf.concat([original, augmented], axis=0)
    count = views + 1
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    tiles = tf.pad(tiles, [[0, rows * columns - count], [0, 0], [0, 0], [0, 0]], constant_values=1)
    tiles = tf.pad(tiles, [[0, 0], [padding, 0], [padding, 0], [0, 0]], constant_values=1)
    size = image_size + padding
    grid = tf.reshape(tiles, [rows, columns, size, size, 3])
    grid = tf.reshape(tf.transpose(grid, [0, 2, 1, 3, 4]), [rows * size, columns * size, 3])
    grid = tf.pad(grid, [[0, padding], [0, padding], [0, 0]], constant_values=1)
    return tf.image.convert_image_dtype(tf.clip_by_value(grid, 0.0, 1.0), tf.uint8, saturate=True)
