"""Datasets whose iterators close at once: tf.data's autotuning thread off by default.

Deleting a tf.data iterator joins the thread that runs its autotuning model
(`RootDataset::Iterator::~Iterator` waits for it). That thread optimizes after 10 ms,
then sleeps twice as long each round (20, 40, ... ms, at most 60 s), and in TensorFlow
2.21 cancelling the iterator does not always wake it: the deletion then waits for the
end of the current sleep. A `fit` call ends by deleting its iterator, so it returns at
the next of 10.23 s, 20.47 s, 40.95 s, 81.9 s, ... after its first step, idle for up to
half of the call (and up to 60 s after long runs). It happens about half of the time
when the iterator is consumed inside a `tf.function` that keeps the CPU busy, which is
every training step. `benchmarks/fit_tail.py` measures it and `docs/benchmarks.md`
holds a plain-TensorFlow reproduction.

With autotuning off there is no such thread. kclr's own pipelines already name their
buffers (`prefetch(1)`, `prefetch(2)`), and a map with `num_parallel_calls=AUTOTUNE`
then runs as many calls at once as the process has CPU cores, which is where
autotuning settles on the small machines where the idle time costs most.
"""

from __future__ import annotations

import tensorflow as tf


def closes_promptly(dataset):
    """`dataset` with tf.data autotuning off, unless its options already say either way.

    A dataset whose `options().autotune.enabled` was set (True or False) by its author
    is returned unchanged; anything that is not a `tf.data.Dataset` (arrays, a
    distributed dataset) too.
    """
    if not isinstance(dataset, tf.data.Dataset):
        return dataset
    if dataset.options().autotune.enabled is not None:
        return dataset
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
