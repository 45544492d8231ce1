"""The momentum of MoCo v3's momentum encoder, as `adjust_moco_momentum` of `main_moco.py`."""

from __future__ import annotations

import math

import tensorflow as tf


def moco_momentum(progress, base_momentum: float = 0.99, cosine: bool = True):
    """`m = 1 - 0.5 * (1 + cos(pi * progress)) * (1 - base_momentum)` (0.99 -> 1).

    `progress` is `epoch / epochs` of the authors, evaluated per iteration
    (`epoch + i / iters_per_epoch`), i.e. `step / total_steps`. With `cosine=False`
    (no `--moco-m-cos`) the momentum stays `base_momentum`.
    """
    if not cosine:
        return tf.constant(base_momentum, tf.float32)
    progress = tf.cast(progress, tf.float32)
    return 1.0 - 0.5 * (1.0 + tf.cos(math.pi * progress)) * (1.0 - base_momentum)
