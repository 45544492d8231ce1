"""MoCo v3's LARS (`moco/optimizer.py` of the authors), which is not SimCLR's.

For each variable `p` with gradient `g` at learning rate `lr`:

    if p.ndim > 1:                      # not a bias nor a BatchNorm parameter
        dp = g + weight_decay * p
        q  = trust * ||p|| / ||dp||     # 1 where either norm is 0
        dp = dp * q
    else:
        dp = g                          # no weight decay, no trust ratio
    mu = momentum * mu + dp             # momentum on the scaled update
    p  = p - lr * mu

Differences from kclr's `lars` (SimCLR's): the exclusions are by rank (`ndim <= 1`),
not by variable name; the trust coefficient is 0.001 and it scales the update before the
momentum, the learning rate stays outside.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kclr_mocov3")
class MoCoLARS(keras.optimizers.Optimizer):
    """The MoCo v3 authors' LARS (see the module docstring).

    Args:
        learning_rate: a float or a schedule (a run supplies its `schedule`).
        weight_decay: decay added to the gradient of variables of rank > 1.
        momentum: momentum of the scaled update.
        trust_coefficient: the trust ratio's coefficient (0.001).
        name: optimizer name.
    """

    run_arguments = ("learning_rate",)

    def __init__(
        self,
        learning_rate=0.0,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        trust_coefficient: float = 0.001,
        name: str = "moco_lars",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.moco_weight_decay = float(weight_decay)
        self.momentum = float(momentum)
        self.trust_coefficient = float(trust_coefficient)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._mu = self.add_optimizer_variables(var_list, "mu")

    def update_step(self, gradient, variable, learning_rate):
        mu = self._mu[self._get_variable_index(variable)]
        lr = ops.cast(learning_rate, variable.dtype)
        dp = ops.cast(gradient, variable.dtype)
        if len(variable.shape) > 1:
            dp = dp + ops.cast(self.moco_weight_decay, variable.dtype) * variable
            param_norm = ops.sqrt(ops.sum(ops.square(variable)))
            update_norm = ops.sqrt(ops.sum(ops.square(dp)))
            one = ops.ones_like(param_norm)
            safe = ops.where(update_norm > 0, update_norm, one)
            trust = ops.cast(self.trust_coefficient, variable.dtype)
            q = ops.where(
                param_norm > 0, ops.where(update_norm > 0, trust * param_norm / safe, one), one
            )
            dp = dp * q
        next_mu = ops.cast(self.momentum, variable.dtype) * mu + dp
        self.assign(mu, next_mu)
        self.assign_sub(variable, lr * next_mu)

    def get_config(self):
        config = super().get_config()
        config.update(
            weight_decay=self.moco_weight_decay,
            momentum=self.momentum,
            trust_coefficient=self.trust_coefficient,
        )
        return config
