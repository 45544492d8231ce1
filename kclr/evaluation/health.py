"""Label-free health of an embedding: effective rank, alignment and uniformity.

Nothing here needs labels, so every run gets a signal of whether its embedding is
collapsing, also on a flat folder of unlabelled images:

- `effective_rank`: RankMe (Garrido et al., "RankMe: Assessing the Downstream
  Performance of Pretrained Self-Supervised Representations by Their Rank", ICML 2023),
  `exp(-sum_k p_k log p_k)` with `p_k = sigma_k / ||sigma||_1 + eps` over the singular
  values `sigma` of the `[N, D]` feature matrix, `eps = 1e-7` as in the paper. It lies
  between 1 (all features on one line) and `min(N, D)`.
- `alignment` and `uniformity` (Wang and Isola, "Understanding Contrastive Representation
  Learning through Alignment and Uniformity on the Hypersphere", ICML 2020), on
  L2-normalised features: alignment `E ||f(x) - f(y)||^2` over positive pairs (two
  augmented views of one image, alpha = 2; lower is better), uniformity
  `log E exp(-2 ||f(x) - f(y)||^2)` over all pairs of distinct images (t = 2; lower is
  better, a collapsed embedding gives 0). As in the authors' code, uniformity is the
  mean over the two views.

`HealthMonitor` computes the three on a fixed, seeded sample of training images (two
augmented views each, drawn once) with the encoder in inference mode at the end of every
epoch, adds them to the epoch logs (so `metrics.csv`, TensorBoard and `curves.png` show
them) and prints a warning when the effective rank collapses. kclr computes them on the
encoder's features (what kNN and downstream tasks use), not on the projection head's.

Example:

```python
import numpy as np
from kclr.evaluation import health

health.effective_rank(np.random.default_rng(0).normal(size=(4096, 64)))  # about 62
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from kclr.evaluation.features import extract_features

RANKME_EPS = 1e-7  # Garrido et al. 2023, section 3
COLLAPSE_FRACTION = 0.01  # a rank below 1% of min(N, D) is a collapse
COLLAPSE_DROP = 0.5  # so is a rank that halves in one epoch
HINT = (
    "Try a lower learning rate or a longer warmup (`schedule.config`), a higher loss "
    "temperature, a larger batch, or a stronger augmentation recipe; check that the "
    "projection head is in use."
)

__all__ = [
    "HealthMonitor",
    "alignment",
    "collapse_warning",
    "effective_rank",
    "health_metrics",
    "health_monitor",
    "health_sample",
    "sample_size",
    "stream_sample",
    "uniformity",
]


def effective_rank(features: Any, eps: float = RANKME_EPS) -> float:
    """RankMe effective rank of `features` `[N, D]` (not centred, as in the paper)."""
    features = np.asarray(features, np.float64)
    sigma = np.linalg.svd(features, compute_uv=False)
    total = np.sum(np.abs(sigma))
    if total == 0:
        return 0.0
    p = sigma / total + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def _normalise(x: Any) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def alignment(x: Any, y: Any, alpha: float = 2.0) -> float:
    """`mean_i ||x_i - y_i||^alpha` of L2-normalised positive pairs `x[i]`, `y[i]`."""
    x, y = _normalise(x), _normalise(y)
    return float(np.mean(np.linalg.norm(x - y, axis=1) ** alpha))


def uniformity(x: Any, t: float = 2.0) -> float:
    """`log mean_{i<j} exp(-t ||x_i - x_j||^2)` of L2-normalised `x` `[N, D]`, N >= 2."""
    x = _normalise(x)
    if len(x) < 2:
        raise ValueError(f"uniformity needs at least 2 examples; received {len(x)}.")
    squared = np.maximum(2.0 - 2.0 * x @ x.T, 0.0)  # ||a - b||^2 of unit vectors
    upper = squared[np.triu_indices(len(x), k=1)]
    # log-mean-exp, stable: max + log mean exp(v - max)
    values = -t * upper
    top = np.max(values)
    return float(top + np.log(np.mean(np.exp(values - top))))


def health_metrics(view1: Any, view2: Any) -> dict[str, float]:
    """`rankme`, `alignment`, `uniformity` of the features of two views `[N, D]` each."""
    return {
        "rankme": effective_rank(view1),
        "alignment": alignment(view1, view2),
        "uniformity": 0.5 * (uniformity(view1) + uniformity(view2)),
    }


def collapse_warning(rank: float, previous: float | None, reachable: int) -> str | None:
    """The log's warning when `rank` is below 1% of `reachable` (min(N, D)) or fell by
    half since `previous`; None when healthy."""
    if rank < COLLAPSE_FRACTION * reachable:
        why = f"below {COLLAPSE_FRACTION:.0%} of the {reachable} it can reach"
    elif previous is not None and rank < COLLAPSE_DROP * previous:
        why = f"down from {previous:.1f} in one epoch"
    else:
        return None
    return f"Warning: the embedding is collapsing: effective rank {rank:.1f}, {why}. {HINT}"


def health_sample(
    source: Any, recipe: Any, image_size: int, examples: int, seed: int = 0
) -> np.ndarray:
    """A fixed sample of two augmented views of up to `examples` images: uint8 `[N, 2, S, S, 3]`.

    The images are a seeded shuffle of `source` and the views are drawn once, with
    the recipe's photometric stage on the host, so every epoch sees the same pixels.
    """
    import tensorflow as tf

    from kclr import data as kdata

    source = kdata.resolve_source(source, "train")
    count = sample_size(source, examples)
    batch = max(1, min(64, count))
    views = getattr(recipe, "views", 2)  # an asymmetric recipe fixes its views
    dataset = kdata.pretraining_dataset(
        source, recipe=recipe, image_size=image_size, views=views, global_batch_size=batch,
        seed=seed, shuffle=True, repeat=False, deterministic=True, photometric="host",
    ).take(max(1, count // batch))  # fmt: skip
    views = [
        tf.image.convert_image_dtype(b["views"][:, :2], tf.uint8, saturate=True).numpy()
        for b in dataset
    ]
    if not views:
        raise ValueError(f"No images to draw the health sample from in {source.name!r}.")
    return np.concatenate(views)


def sample_size(source: Any, examples: int) -> int:
    """`examples`, or fewer when the source is known to be smaller (so that the sample
    holds each image once); a TFRecord source is not read through to count it."""
    if source.kind in ("files", "arrays", "hf") or source.cached_count is not None:
        return min(int(examples), len(source))
    return int(examples)


def stream_sample(stream: Any, examples: int) -> np.ndarray | None:
    """The first `examples` images of a run's stream of pretraining batches, as uint8
    `[N, 2, S, S, 3]` (a fresh iterator, so training's own is untouched), or None where the
    stream cannot give them: distributed, uint8 views (photometric stage on the device), or
    not two views."""
    import tensorflow as tf

    if not isinstance(stream, tf.data.Dataset):
        return None
    spec = stream.element_spec.get("views") if isinstance(stream.element_spec, dict) else None
    if spec is None or spec.dtype != tf.float32 or spec.shape.rank != 5 or spec.shape[1] != 2:
        return None
    views, count = [], 0
    for batch in stream:
        wanted = batch["views"][: examples - count]
        views.append(tf.image.convert_image_dtype(wanted, tf.uint8, saturate=True).numpy())
        count += len(views[-1])
        if count >= examples:
            break
    return np.concatenate(views) if views else None


def health_monitor(cfg, source: Any, recipe: Any, seed: int, echo=None) -> HealthMonitor | None:
    """The `HealthMonitor` of a run configuration, or None when `eval.health_examples` is 0.

    Its sample is drawn when training begins: the first `eval.health_examples` images of
    the run's own stream when it is given as `monitor.stream` and can give them (no
    second pipeline to build), else `health_sample(source, recipe, ...)` with `seed`.
    """
    if not cfg.eval.health_examples:
        return None
    examples = sample_size(source, cfg.eval.health_examples)

    def draw(stream) -> np.ndarray:
        views = stream_sample(stream, examples) if stream is not None else None
        if views is None:
            views = health_sample(source, recipe, cfg.data.image_size, examples, seed)
        return views

    return HealthMonitor(draw, echo=echo)


class HealthMonitor(keras.callbacks.Callback):
    """Logs `rankme`, `alignment` and `uniformity` of the encoder every epoch.

    Args:
        views: uint8 or [0, 1] float views `[N, 2, H, W, 3]` (`health_sample`), fixed
            for the whole run; or a function of `self.stream` (the run's stream of
            batches, or None) that returns them when training begins.
        encoder: the model to measure (default: `model.encoder`).
        batch_size: batch size of feature extraction.
        echo: where the epoch's line and the collapse warning go (default: `print`).

    Put it before the loggers in the callback list.
    """

    def __init__(
        self,
        views: np.ndarray,
        encoder=None,
        batch_size: int = 256,
        echo: Callable[[str], Any] | None = None,
    ) -> None:
        super().__init__()
        self.draw = views if callable(views) else None
        self.views = None if callable(views) else _checked(views)
        self.stream = None
        self.encoder = encoder
        self.batch_size = int(batch_size)
        self.echo = echo or (lambda line: print(line, flush=True))
        self.history: list[dict[str, float]] = []
        self.dimension = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.views is None:
            self.views = _checked(self.draw(self.stream))

    def evaluate(self) -> dict[str, float]:
        """The three metrics now, with the current weights."""
        encoder = self.encoder if self.encoder is not None else self.model.encoder
        first = extract_features(encoder, self.views[:, 0], batch_size=self.batch_size)
        second = extract_features(encoder, self.views[:, 1], batch_size=self.batch_size)
        self.dimension = first["features"].shape[1]
        return health_metrics(first["features"], second["features"])

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        result = self.evaluate()
        previous = self.history[-1]["rankme"] if self.history else None
        reachable = min(len(self.views), self.dimension)
        self.echo(
            f"epoch {epoch + 1}: effective rank {result['rankme']:.1f} of {reachable} "
            f"(alignment {result['alignment']:.3f}, uniformity {result['uniformity']:.3f})"
        )
        warning = collapse_warning(result["rankme"], previous, reachable)
        if warning:
            self.echo(f"epoch {epoch + 1}: {warning}")
        self.history.append({"epoch": epoch + 1, **result})
        if logs is not None:
            logs.update(result)


def _checked(views: Any) -> np.ndarray:
    views = np.asarray(views)
    if views.ndim != 5 or views.shape[1] != 2 or len(views) < 2:
        raise ValueError(
            "HealthMonitor needs two views of at least 2 images, [N, 2, H, W, 3]; "
            f"received shape {views.shape}."
        )
    return views
