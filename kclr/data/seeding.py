"""Seeds of the input pipelines: random parameters keyed by position in the stream.

A pipeline's random parameters come from stateless ops seeded by `(seed, shard)`
folded with a salt (`ELEMENT_SALT` for the draws of one file, `BATCH_SALT` for those
of one batch of arrays) and the position of the file or batch, so a run with a fixed
`seed` and `deterministic=True` is reproducible however many threads decode.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

ELEMENT_SALT = 1
BATCH_SALT = 2


def resolve_seed(seed: int | None) -> int:
    """`seed` as an int, or a fresh random seed when it is `None`."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**31 - 1))
    return int(seed)


def fold(base_seed: tf.Tensor, salt: int, index) -> tf.Tensor:
    """The stateless seed of position `index` in the stream `salt` of `base_seed`."""
    seed = tf.random.experimental.stateless_fold_in(base_seed, salt)
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(index, tf.int64))
