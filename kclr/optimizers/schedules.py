"""SimCLR's learning-rate schedule: linear warmup then cosine decay to 0."""

from __future__ import annotations

import math

import keras
from keras import ops

from kclr.registry import schedules

SCALINGS = ("linear", "sqrt")


def scale_learning_rate(base_learning_rate: float, global_batch_size: int, scaling="linear"):
    """Returns `base * B / 256` ("linear") or `base * sqrt(B)` ("sqrt"), as SimCLR."""
    if scaling == "linear":
        return base_learning_rate * global_batch_size / 256.0
    if scaling == "sqrt":
        return base_learning_rate * math.sqrt(global_batch_size)
    raise ValueError(
        f"`scaling` must be one of {SCALINGS}; received {scaling!r}. Use 'linear' "
        "(0.3 x B/256, SimCLR v1) or 'sqrt' (0.075 x sqrt(B), better at small batch)."
    )


@schedules.register("warmup_cosine", description="Linear warmup then cosine decay (SimCLR)")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup followed by cosine decay to 0, as SimCLR's `WarmUpAndCosineDecay`.

    Reference: Chen et al., ICML 2020 (https://arxiv.org/abs/2002.05709),
    `tf2/model.py` of the official code.

    ```
    peak          = base * B / 256 ("linear") or base * sqrt(B) ("sqrt")
    warmup_steps  = int(round(warmup_epochs * num_examples // B))
    total_steps   = total_steps or num_examples * epochs // B + 1
    lr(step)      = step / warmup_steps * peak                       if step < warmup_steps
                  = peak * 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup)))
    ```

    Args:
        base_learning_rate: base learning rate (0.3 linear or 0.075 sqrt in SimCLR).
        global_batch_size: global batch size `B`.
        num_examples: number of training examples per epoch.
        epochs: number of training epochs.
        warmup_epochs: warmup length in epochs (official 10).
        scaling: `"linear"` or `"sqrt"`.
        total_steps: overrides the number of training steps (official `train_steps`).

    Example:

    >>> import kclr
    >>> schedule = kclr.optimizers.WarmupCosineDecay(0.3, 4096, 1281167, epochs=100)
    >>> schedule.warmup_steps, schedule.total_steps
    (3127, 31279)
    """

    # What a run supplies (`data.global_batch_size`, the data's size, `train.epochs`,
    # `train.steps`); without a run (`ContrastiveTrainer.compile`) they go in the spec.
    run_arguments = ("global_batch_size", "num_examples", "epochs", "total_steps")

    def __init__(
        self,
        base_learning_rate: float,
        global_batch_size: int,
        num_examples: int,
        epochs: float,
        warmup_epochs: float = 10,
        scaling: str = "linear",
        total_steps: int | None = None,
        name: str = "warmup_cosine_decay",
    ):
        if global_batch_size <= 0 or num_examples <= 0:
            raise ValueError(
                "`global_batch_size` and `num_examples` must be positive; received "
                f"global_batch_size={global_batch_size}, num_examples={num_examples}."
            )
        self.base_learning_rate = float(base_learning_rate)
        self.global_batch_size = int(global_batch_size)
        self.num_examples = int(num_examples)
        self.epochs = epochs
        self.warmup_epochs = warmup_epochs
        self.scaling = scaling
        self.name = name
        self.peak_learning_rate = scale_learning_rate(
            self.base_learning_rate, self.global_batch_size, scaling
        )
        self.warmup_steps = int(round(warmup_epochs * num_examples // global_batch_size))
        self.total_steps = int(
            total_steps
            if total_steps is not None
            else num_examples * epochs // global_batch_size + 1
        )
        self._total_steps_arg = total_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        warmup = float(self.warmup_steps)
        if self.warmup_steps > 0:
            warmup_lr = step / warmup * peak
        else:
            warmup_lr = ops.convert_to_tensor(peak, "float32")
        decay_steps = float(max(self.total_steps - self.warmup_steps, 1))
        progress = ops.minimum(ops.maximum(step - warmup, 0.0), decay_steps) / decay_steps
        cosine_lr = peak * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warmup, warmup_lr, cosine_lr)

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "global_batch_size": self.global_batch_size,
            "num_examples": self.num_examples,
            "epochs": self.epochs,
            "warmup_epochs": self.warmup_epochs,
            "scaling": self.scaling,
            "total_steps": self._total_steps_arg,
            "name": self.name,
        }


@schedules.register("constant", description="A constant learning rate, scaled by the batch")
class ConstantSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A constant learning rate `base * B / 256` ("linear") or `base * sqrt(B)` ("sqrt").

    The same arguments as `WarmupCosineDecay`, so that a run config can switch between
    them; the epoch and step counts are accepted and ignored by design (a constant has
    no length).

    Example:

    >>> import kclr
    >>> float(kclr.optimizers.ConstantSchedule(0.1, 512, 1000, epochs=1)(0))
    0.2
    """

    # What a run supplies (`data.global_batch_size`, the data's size, `train.epochs`,
    # `train.steps`); without a run (`ContrastiveTrainer.compile`) they go in the spec.
    run_arguments = ("global_batch_size", "num_examples", "epochs", "total_steps")

    def __init__(
        self,
        base_learning_rate: float,
        global_batch_size: int,
        num_examples: int | None = None,
        epochs: float | None = None,
        scaling: str = "linear",
        total_steps: int | None = None,
        name: str = "constant",
    ):
        self.base_learning_rate = float(base_learning_rate)
        self.global_batch_size = int(global_batch_size)
        self.scaling = scaling
        self.name = name
        self.peak_learning_rate = scale_learning_rate(
            self.base_learning_rate, self.global_batch_size, scaling
        )

    def __call__(self, step):
        return ops.convert_to_tensor(self.peak_learning_rate, "float32")

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "global_batch_size": self.global_batch_size,
            "scaling": self.scaling,
            "name": self.name,
        }
