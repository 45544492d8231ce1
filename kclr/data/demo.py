"""The built-in demo dataset: coloured shapes on varied backgrounds, generated on the fly.

kclr ships no images: `load()` draws the demo dataset with vectorised NumPy from a
fixed seed per split, so every install sees the same pixels and nothing is
downloaded. It is small enough to pretrain on two CPU cores in minutes.

The label is the *shape* (ten classes: disc, square, triangle, inverted triangle,
star, cross, plus, ring, diamond, hourglass). Everything else is a nuisance drawn
at random per image, independently of the label: the shape's colour, position,
size, aspect and tilt, and the background colour (plus pixel noise). Raw pixels and a
randomly initialised encoder are dominated by those nuisances, whereas the
SimCLR recipe (random crops + colour distortion) teaches an encoder to ignore
them, which is the paper's crop + colour finding (Chen et al., 2020, section 3)
made visible in a few minutes.

Example:

```python
from kclr.data import demo

images, labels = demo.load("train")   # uint8 [6000, 32, 32, 3], int32 [6000]
demo.CLASS_NAMES[labels[0]]
```
"""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 32
NUM_CLASSES = 10
CLASS_NAMES = (
    "disc",
    "square",
    "triangle",
    "inverted triangle",
    "star",
    "cross",
    "plus",
    "ring",
    "diamond",
    "hourglass",
)
SPLIT_SIZES = {"train": 6000, "test": 1000}
_SEEDS = {"train": 20200213, "test": 20200214}
_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _signed_inside(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """How far inside shape `label` each point is (positive inside), in shape units (radius ~1)."""
    au, av = np.abs(u), np.abs(v)
    if label == 0:  # disc
        return 1.0 - np.sqrt(u**2 + v**2)
    if label == 1:  # square
        return 0.82 - np.maximum(au, av)
    if label == 2:  # triangle, pointing up
        return np.minimum(v + 0.6, (1.1 - v - 1.732 * au) / 2.0)
    if label == 3:  # triangle, pointing down
        return _signed_inside(2, u, -v)
    if label == 4:  # five-pointed star
        r = np.sqrt(u**2 + v**2)
        return 0.6 + 0.4 * np.cos(5 * np.arctan2(u, v)) - r
    if label == 5:  # cross: a plus turned by 45 degrees
        return _signed_inside(6, (u + v) / 1.414, (u - v) / 1.414)
    if label == 6:  # plus
        return np.maximum(np.minimum(0.33 - au, 1.0 - av), np.minimum(0.33 - av, 1.0 - au))
    if label == 7:  # ring
        r = np.sqrt(u**2 + v**2)
        return np.minimum(1.0 - r, r - 0.5)
    if label == 8:  # diamond
        return (1.05 - (au + av)) / 1.414
    # hourglass: two triangles meeting at their tips
    return np.minimum(0.95 - av, av - 0.95 * au + 0.05)


def _generate(split: str) -> tuple[np.ndarray, np.ndarray]:
    n = SPLIT_SIZES[split]
    rng = np.random.default_rng(_SEEDS[split])
    s = IMAGE_SIZE
    labels = np.arange(n, dtype=np.int32) % NUM_CLASSES
    rng.shuffle(labels)

    # Nuisances, one draw per image.
    scale = rng.uniform(0.24, 0.36, n) * s  # shape radius in pixels
    aspect = rng.uniform(0.85, 1.18, n)
    cx = s / 2 + rng.uniform(-1.0, 1.0, n) * (s / 2 - scale)
    cy = s / 2 + rng.uniform(-1.0, 1.0, n) * (s / 2 - scale)
    angle = rng.uniform(-0.2, 0.2, n)  # small tilt, radians

    yy, xx = np.meshgrid(np.arange(s) + 0.5, np.arange(s) + 0.5, indexing="ij")
    dx = (xx[None] - cx[:, None, None]) / (scale * aspect)[:, None, None]
    dy = (yy[None] - cy[:, None, None]) / (scale / aspect)[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u = cos * dx + sin * dy
    v = -(-sin * dx + cos * dy)  # image rows grow downwards; flip so "up" is up
    inside = np.empty_like(u)
    for label in range(NUM_CLASSES):
        chosen = labels == label
        inside[chosen] = _signed_inside(label, u[chosen], v[chosen])
    # Anti-aliased edge: about one pixel wide in image units.
    alpha = np.clip(inside * scale[:, None, None] + 0.5, 0.0, 1.0).astype(np.float32)[..., None]

    # Background: a random colour plus pixel noise.
    c0 = rng.uniform(0, 1, (n, 1, 1, 3)).astype(np.float32)
    background = c0 + 0.06 * rng.standard_normal((n, s, s, 3), dtype=np.float32)

    # Foreground: a random colour, pushed away from the background so the shape shows.
    fg = rng.uniform(0, 1, (n, 1, 1, 3)).astype(np.float32)
    mean_bg = background.mean(axis=(1, 2), keepdims=True)
    too_close = np.abs(fg - mean_bg).max(axis=-1, keepdims=True) < 0.35
    fg = np.where(too_close, 1.0 - mean_bg, fg)
    fg = fg + 0.03 * rng.standard_normal((n, s, s, 3), dtype=np.float32)

    images = background * (1 - alpha) + fg * alpha
    images = np.clip(images * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return images, labels


def load(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Returns the demo dataset's `(images, labels)` for one split.

    Args:
        split: `"train"` (6,000 images) or `"test"` (1,000 images).

    Returns:
        `images`: uint8 array `[N, IMAGE_SIZE, IMAGE_SIZE, 3]`; `labels`: int32
        array `[N]` with values in `[0, NUM_CLASSES)`, balanced across classes.
        The arrays are generated once per process, cached, and returned as
        read-only views (copy them before editing).

    Example:

    ```python
    images, labels = kclr.data.demo.load("test")
    ```
    """
    if split not in SPLIT_SIZES:
        raise ValueError(
            f"Unknown demo split {split!r}. Expected one of {sorted(SPLIT_SIZES)}, "
            "e.g. `kclr.data.demo.load('train')`."
        )
    if split not in _CACHE:
        images, labels = _generate(split)
        images.setflags(write=False)
        labels.setflags(write=False)
        _CACHE[split] = (images, labels)
    return _CACHE[split]
