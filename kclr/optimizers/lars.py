"""LARS, the layer-wise adaptive optimizer of SimCLR, as a Keras 3 optimizer."""

from __future__ import annotations

import re

import keras
from keras import ops

from kclr.registry import optimizers

#: Patterns (`re.search` on `variable.path`) excluded by default from weight decay
#: and from layer adaptation: the official list (`batch_normalization`, `bias`,
#: `head_supervised`) plus BatchNormalization's `gamma` / `beta`, because Keras 3
#: layer names need not contain "batch_normalization".
DEFAULT_EXCLUDE = ("batch_normalization", "bias", r"(^|/)gamma$", r"(^|/)beta$", "head_supervised")


@optimizers.register(
    "lars", description="LARS (layer-wise adaptive rate scaling), SimCLR's optimizer"
)
class LARS(keras.optimizers.Optimizer):
    """Layer-wise Adaptive Rate Scaling (LARS), as in the official SimCLR code.

    Reference: You et al., "Large Batch Training of Convolutional Networks",
    2017 (https://arxiv.org/abs/1708.03888); update of SimCLR's
    `lars_optimizer.py` (Chen et al., ICML 2020).

    For each variable `w` with gradient `g` (classic momentum, the default):

    ```
    g = g + weight_decay * w                          # unless excluded from weight decay
    trust = eeta * ||w|| / ||g||  (1 if a norm is 0)  # unless excluded from adaptation
    v = momentum * v + learning_rate * trust * g      # learning rate inside the buffer
    w = w - v                                         # (nesterov: w -= momentum * v + lr * trust * g)
    ```

    Exclusions are regular expressions searched in `variable.path` (Keras 3's
    `variable.name` is only `"kernel"` / `"gamma"`, unlike the Keras-2 names the
    official code matched). Excluded variables get plain momentum SGD at the
    global learning rate. Weight decay here is coupled (added to the gradient,
    before the trust ratio); Keras's own decoupled `weight_decay` mechanism is not used.

    Args:
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`
            (e.g. `kclr.optimizers.WarmupCosineDecay`).
        momentum: momentum (official 0.9).
        weight_decay: coupled weight decay (official 1e-6 in TF2 flags, 1e-4 in
            the README recipes and SimCLRv2).
        eeta: trust coefficient (official 0.001).
        exclude_from_weight_decay: patterns searched in `variable.path`;
            default `DEFAULT_EXCLUDE` (BN parameters, biases, supervised head).
        exclude_from_layer_adaptation: patterns for the trust ratio; `None`
            means the same as `exclude_from_weight_decay` (as the official code).
        classic_momentum: `True` puts the learning rate inside the momentum
            buffer (official default); `False` applies the trust ratio to the
            momentum buffer instead.
        nesterov: Nesterov momentum (official default False).
        name, **kwargs: as for `keras.optimizers.Optimizer` (`clipnorm`, ...).

    Example:

    >>> import kclr
    >>> opt = kclr.optimizers.LARS(
    ...     kclr.optimizers.WarmupCosineDecay(0.3, 512, 50000, epochs=100),
    ...     weight_decay=1e-6,
    ... )
    """

    run_arguments = ("learning_rate",)  # a run gives the built `schedule`

    def __init__(
        self,
        learning_rate=0.001,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eeta: float = 0.001,
        exclude_from_weight_decay=DEFAULT_EXCLUDE,
        exclude_from_layer_adaptation=None,
        classic_momentum: bool = True,
        nesterov: bool = False,
        name: str = "lars",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1); received momentum={momentum}.")
        if weight_decay is None or weight_decay < 0:
            raise ValueError(
                f"`weight_decay` must be a float >= 0; received weight_decay={weight_decay}."
            )
        self.momentum = float(momentum)
        # Keras's base optimizer applies *decoupled* decay when `self.weight_decay`
        # is set; LARS handles its own (coupled) decay in `update_step`.
        self.lars_weight_decay = float(weight_decay)
        self.eeta = float(eeta)
        self.wd_exclusions = _as_patterns(exclude_from_weight_decay, "exclude_from_weight_decay")
        self.adaptation_exclusions = (
            None
            if exclude_from_layer_adaptation is None
            else _as_patterns(exclude_from_layer_adaptation, "exclude_from_layer_adaptation")
        )
        self.classic_momentum = bool(classic_momentum)
        self.nesterov = bool(nesterov)

    def _apply_weight_decay(self, variables):
        return  # coupled weight decay is part of `update_step`

    def use_weight_decay(self, path: str) -> bool:
        """Whether the variable at `path` gets weight decay."""
        return self.lars_weight_decay > 0 and not _matches(self.wd_exclusions, path)

    def use_layer_adaptation(self, path: str) -> bool:
        """Whether the variable at `path` gets the trust ratio."""
        patterns = (
            self.wd_exclusions if self.adaptation_exclusions is None else self.adaptation_exclusions
        )
        return not _matches(patterns, path)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_optimizer_variables(var_list, "momentum")
        self._flags = [
            (self.use_weight_decay(v.path), self.use_layer_adaptation(v.path)) for v in var_list
        ]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        use_wd, adapt = self._flags[index]
        v = self._momentums[index]
        lr = ops.cast(learning_rate, variable.dtype)
        momentum = ops.cast(self.momentum, variable.dtype)
        grad = ops.cast(gradient, variable.dtype)
        if use_wd:
            grad = grad + ops.cast(self.lars_weight_decay, variable.dtype) * variable
        if self.classic_momentum:
            scaled_lr = lr * self._trust_ratio(variable, grad) if adapt else lr
            next_v = momentum * v + scaled_lr * grad
            update = momentum * next_v + scaled_lr * grad if self.nesterov else next_v
            self.assign(v, next_v)
            self.assign_sub(variable, update)
        else:
            next_v = momentum * v + grad
            update = momentum * next_v + grad if self.nesterov else next_v
            scaled_lr = lr * self._trust_ratio(variable, update) if adapt else lr
            self.assign(v, next_v)
            self.assign_sub(variable, scaled_lr * update)

    def _trust_ratio(self, variable, direction):
        w_norm = ops.sqrt(ops.sum(ops.square(variable)))
        g_norm = ops.sqrt(ops.sum(ops.square(direction)))
        eeta = ops.cast(self.eeta, variable.dtype)
        one = ops.ones_like(w_norm)
        safe_g = ops.where(g_norm > 0, g_norm, one)
        return ops.where(w_norm > 0, ops.where(g_norm > 0, eeta * w_norm / safe_g, one), one)

    def get_config(self):
        config = super().get_config()
        config.pop("weight_decay", None)
        config.update(
            momentum=self.momentum,
            weight_decay=self.lars_weight_decay,
            eeta=self.eeta,
            exclude_from_weight_decay=list(self.wd_exclusions),
            exclude_from_layer_adaptation=(
                None if self.adaptation_exclusions is None else list(self.adaptation_exclusions)
            ),
            classic_momentum=self.classic_momentum,
            nesterov=self.nesterov,
        )
        return config


def _as_patterns(patterns, argument: str) -> tuple[str, ...]:
    if patterns is None:
        return ()
    if isinstance(patterns, str):
        patterns = [patterns]
    out = []
    for pattern in patterns:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as error:
            raise ValueError(
                f"`{argument}` must be a list of regular expressions searched in "
                f"`variable.path`; received {pattern!r}, which is not one ({error})."
            ) from error
        out.append(pattern)
    return tuple(out)


def _matches(patterns, path: str) -> bool:
    return any(re.search(pattern, path) for pattern in patterns)
