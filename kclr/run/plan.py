"""The plan of a run: what `fit` reads from a config besides the component specs, resolved.

`plan(cfg, num_examples)` turns the plain sections (`data`, `train`, `eval`) into steps,
epochs, the dataset's options, the checkpointing and the kNN monitor of one run.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from kclr.run import config as kconfig


@dataclasses.dataclass
class RunPlan:
    """Everything `fit` reads from a config besides the component specs, resolved."""

    num_examples: int
    steps_per_epoch: int
    total_steps: int
    epochs: int
    dataset: dict[str, Any]
    precision: str
    jit_compile: bool
    gradient_cache_chunk_size: int | None
    seed: int
    checkpoint: dict[str, Any]
    export: bool
    monitor: dict[str, Any] | None
    baselines: bool
    bad_files: dict[str, Any] | None = None  # `kclr.data.bad_files.report` of the source


def plan(cfg: kconfig.Config, num_examples: int) -> RunPlan:
    """Resolves `cfg`'s plain sections for a training set of `num_examples` examples."""
    data, train, ev = cfg.data, cfg.train, cfg.eval
    steps_per_epoch = max(1, num_examples // data.global_batch_size)
    total_steps = train.steps or steps_per_epoch * train.epochs
    monitor = None
    if ev.monitor:
        monitor = {
            "source": data.eval_source or data.source,
            "where": "data.eval_source" if data.eval_source else "data.source",
            "every_n_epochs": ev.monitor_every_epochs,
            "max_examples": ev.monitor_max_examples,
        }
    return RunPlan(
        num_examples=num_examples,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        epochs=math.ceil(total_steps / steps_per_epoch),
        dataset={
            "image_size": data.image_size,
            "views": data.views,
            "global_batch_size": data.global_batch_size,
            "seed": int(train.seed),
            "photometric": data.photometric,
        },
        precision=train.precision,
        jit_compile=train.jit_compile,
        gradient_cache_chunk_size=train.gradient_cache_chunk_size,
        seed=train.seed,
        checkpoint={"every_steps": train.checkpoint_every_steps, "keep": train.keep_checkpoints},
        export=train.export,
        monitor=monitor,
        baselines=ev.baselines,
    )
