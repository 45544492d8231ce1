"""RandAugment and AutoAugment as batched Keras layers with per-image choices."""

from __future__ import annotations

import keras
from keras import ops

from kclr_randaugment.ops import IMAGENET_POLICY, RANDAUGMENT_OPERATIONS, make_op


class _PolicyLayer(keras.layers.Layer):
    """Runs stages of candidate operations; each image keeps the candidate it drew.

    Every candidate runs once on the whole batch, so the cost is one batched call per
    candidate and no per-image Python. `training=False` is the identity.
    """

    def __init__(self, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self._generator = keras.random.SeedGenerator(seed)

    def _select(self, images, candidates, probabilities, choice):
        """candidates: list of layers (None = identity); choice: int [B]."""
        batch = ops.shape(images)[0]
        fire = keras.random.uniform((batch,), seed=self._generator)
        out = images
        for index, (layer, probability) in enumerate(zip(candidates, probabilities, strict=False)):
            if layer is None or probability <= 0.0:
                continue
            mask = ops.logical_and(ops.equal(choice, index), fire < probability)
            mask = ops.reshape(mask, (-1, 1, 1, 1))
            out = ops.where(mask, ops.clip(layer(images, training=True), 0.0, 1.0), out)
        return out


@keras.saving.register_keras_serializable(package="kclr_randaugment")
class RandAugment(_PolicyLayer):
    """RandAugment: `num_ops` operations per image, each drawn uniformly, at one magnitude.

    Reference: Cubuk et al., "RandAugment: Practical automated data augmentation with a
    reduced search space", CVPR Workshops 2020.

    Args:
        num_ops: number of operations applied in sequence to each image (N).
        magnitude: level of every operation on the 0-10 scale (M).
        seed: seed for reproducible draws.

    Example:

    >>> layer = RandAugment(num_ops=2, magnitude=9, seed=0)
    >>> out = layer(keras.random.uniform((4, 32, 32, 3)), training=True)
    """

    def __init__(self, num_ops: int = 2, magnitude: float = 9.0, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if num_ops < 1:
            raise ValueError(f"num_ops must be >= 1, received {num_ops}.")
        if not 0 <= magnitude <= 10:
            raise ValueError(f"magnitude must be in [0, 10], received {magnitude}.")
        self.num_ops = int(num_ops)
        self.magnitude = float(magnitude)
        base = 0 if seed is None else seed
        self._ops = [
            make_op(name, magnitude, seed=None if seed is None else base + i)
            for i, name in enumerate(RANDAUGMENT_OPERATIONS)
        ]

    def call(self, images, training=True):
        if not training:
            return images
        images = ops.convert_to_tensor(images, dtype="float32")
        batch = ops.shape(images)[0]
        for _ in range(self.num_ops):
            choice = keras.random.randint((batch,), 0, len(self._ops), seed=self._generator)
            images = self._select(images, self._ops, [1.0] * len(self._ops), choice)
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"num_ops": self.num_ops, "magnitude": self.magnitude, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="kclr_randaugment")
class AutoAugment(_PolicyLayer):
    """AutoAugment's ImageNet policy: one of 25 two-step sub-policies per image.

    Reference: Cubuk et al., "AutoAugment: Learning augmentation strategies from data",
    CVPR 2019. The SupCon paper's best ImageNet augmentation.

    Args:
        policy: "imagenet" (the only published policy implemented).
        seed: seed for reproducible draws.
    """

    POLICIES = {"imagenet": IMAGENET_POLICY}

    def __init__(self, policy: str = "imagenet", seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if policy not in self.POLICIES:
            raise ValueError(
                f"Unknown AutoAugment policy {policy!r}; expected one of {sorted(self.POLICIES)}."
            )
        self.policy = policy
        sub_policies = self.POLICIES[policy]
        base = 0 if seed is None else seed
        self._stages = []
        for stage in range(2):
            layers, probabilities = [], []
            for i, sub_policy in enumerate(sub_policies):
                name, probability, level = sub_policy[stage]
                op_seed = None if seed is None else base + 100 * stage + i
                layers.append(make_op(name, level, seed=op_seed))
                probabilities.append(probability)
            self._stages.append((layers, probabilities))

    def call(self, images, training=True):
        if not training:
            return images
        images = ops.convert_to_tensor(images, dtype="float32")
        batch = ops.shape(images)[0]
        choice = keras.random.randint(
            (batch,), 0, len(self.POLICIES[self.policy]), seed=self._generator
        )
        for layers, probabilities in self._stages:
            images = self._select(images, layers, probabilities, choice)
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"policy": self.policy, "seed": self.seed})
        return config
