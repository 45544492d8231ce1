"""ColorDistortion: SimCLR colour jitter (brightness, contrast, saturation, hue), batched."""

from __future__ import annotations

import itertools

import tensorflow as tf

from kclr.augment import functional
from kclr.augment.base import SMALL_BATCH, AugmentationLayer, bernoulli, uniform
from kclr.registry import augmentations

IMPLEMENTATIONS = ("simclrv2", "simclrv1")
_IDENTITY = 4  # op id of images the jitter does not touch
_PER_IMAGE_MAX = SMALL_BATCH  # static batches up to this size: one switch_case per image
_ORDERS = [(0, 1, 2, 3)] + [p for p in itertools.permutations(range(4)) if p != (0, 1, 2, 3)]


@augmentations.register(
    "color_distortion", description="SimCLR colour jitter, strength s, random order, p=0.8"
)
class ColorDistortion(AugmentationLayer):
    """SimCLR's colour jitter: brightness, contrast, saturation and hue in random order.

    From Chen et al., 2020 (SimCLR, Appendix A) as in the authors' `color_jitter_rand`:
    strength `s` gives brightness = contrast = saturation = `0.8 s` and hue = `0.2 s`;
    the four operations run in a random order, each followed by a clip to `[0, 1]`; the
    whole jitter is applied with probability `probability` (0.8). Brightness is
    multiplicative (`x * U[max(1 - b, 0), 1 + b]`, `impl="simclrv2"`, what the released
    code uses) or additive (`x + U[-b, b]`, `impl="simclrv1"`, the v1 checkpoints).
    Contrast, saturation and hue follow `tf.image.adjust_contrast|saturation|hue`.

    kclr differs from the authors' code in one way: the random parameters and the order
    are drawn per image for a whole batch at once (the authors map the function over
    single images, which gives the same distribution). Grayscale is a separate layer,
    `RandomGrayscale`.

    Args:
        strength: colour distortion strength `s` (1.0 ImageNet, 0.5 CIFAR).
        brightness, contrast, saturation, hue: override the values derived from
            `strength`; 0 switches an operation off.
        probability: probability that an image is jittered at all.
        random_order: apply the operations in a random order per image (official); False
            applies brightness, contrast, saturation, hue.
        impl: `"simclrv2"` (multiplicative brightness) or `"simclrv1"` (additive).
        seed: optional int seed.

    Example:

    ```python
    jitter = kclr.augment.ColorDistortion(strength=0.5, seed=0)
    out = jitter(tf.random.uniform([8, 32, 32, 3]))
    ```
    """

    def __init__(
        self,
        strength: float = 1.0,
        brightness: float | None = None,
        contrast: float | None = None,
        saturation: float | None = None,
        hue: float | None = None,
        probability: float = 0.8,
        random_order: bool = True,
        impl: str = "simclrv2",
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        if impl not in IMPLEMENTATIONS:
            raise ValueError(
                f"ColorDistortion: unknown impl={impl!r}; expected one of {IMPLEMENTATIONS}."
            )
        self.strength = float(strength)
        self.brightness = float(0.8 * strength if brightness is None else brightness)
        self.contrast = float(0.8 * strength if contrast is None else contrast)
        self.saturation = float(0.8 * strength if saturation is None else saturation)
        self.hue = float(0.2 * strength if hue is None else hue)
        for name in ("brightness", "contrast", "saturation", "hue"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"ColorDistortion: {name} must be >= 0; received {getattr(self, name)}."
                )
        if self.hue > 0.5:
            raise ValueError(f"ColorDistortion: hue must be <= 0.5; received {self.hue}.")
        self.probability = float(probability)
        self.random_order = bool(random_order)
        self.impl = impl

    def get_random_transformation(self, images, seed, device=None):
        batch = tf.shape(images)[0]
        b, c, s = self.brightness, self.contrast, self.saturation
        if self.impl == "simclrv2":
            brightness = uniform(seed, [batch], max(1.0 - b, 0.0), 1.0 + b, salt=1, device=device)
        else:
            brightness = uniform(seed, [batch], -b, b, salt=1, device=device)
        if self.random_order:
            # A uniformly random permutation per image: argsort of i.i.d. uniforms.
            order = tf.argsort(uniform(seed, [batch, 4], salt=5, device=device), axis=-1)
        else:
            order = tf.tile(tf.range(4)[None], [batch, 1])
        apply = bernoulli(seed, batch, self.probability, salt=0, device=device)
        order = tf.where(apply[:, None], tf.cast(order, tf.int32), _IDENTITY)
        return {
            "factors": tf.stack(
                [
                    brightness,
                    uniform(seed, [batch], 1.0 - c, 1.0 + c, salt=2, device=device),
                    uniform(seed, [batch], 1.0 - s, 1.0 + s, salt=3, device=device),
                    uniform(seed, [batch], -self.hue, self.hue, salt=4, device=device),
                ],
                axis=-1,
            ),  # [B, 4]
            "order": order,  # [B, 4] op ids, 4 = untouched
        }

    def _planes_op(self, op, planes, factor):
        if op == 0 and self.brightness > 0:
            if self.impl == "simclrv2":
                return functional.planes_brightness_multiplicative(planes, factor)
            return functional.planes_brightness_additive(planes, factor)
        if op == 1 and self.contrast > 0:
            return functional.planes_contrast(planes, factor)
        if op == 2 and self.saturation > 0:
            return functional.planes_saturation(planes, factor)
        if op == 3 and self.hue > 0:
            return functional.planes_hue(planes, factor)
        return planes

    def transform_images(self, images, transformation, device=None):
        factors = transformation["factors"]
        order = transformation["order"]
        orders = _ORDERS if self.random_order else _ORDERS[:1]
        if device is not None:
            return self._transform_dense(images, factors, order)
        if images.shape[0] is not None and images.shape[0] <= _PER_IMAGE_MAX:
            return self._transform_each(images, factors, order, orders)
        # Group the images by their whole order (24 permutations, plus "untouched"), so
        # one partition and one stitch serve all four stages; each image goes through
        # exactly its four ops, computed on channel planes.
        code = order[:, 0] * 64 + order[:, 1] * 16 + order[:, 2] * 4 + order[:, 3]
        group = tf.fill(tf.shape(code), len(orders))
        for i, perm in enumerate(orders):
            group = tf.where(code == perm[0] * 64 + perm[1] * 16 + perm[2] * 4 + perm[3], i, group)
        num_groups = len(orders) + 1
        indices = tf.dynamic_partition(tf.range(tf.shape(images)[0]), group, num_groups)
        parts = tf.dynamic_partition(images, group, num_groups)
        part_factors = tf.dynamic_partition(factors, group, num_groups)
        outputs = []
        for i, perm in enumerate(orders):
            planes = tf.unstack(parts[i], axis=-1)
            for op in perm:
                planes = self._planes_op(op, planes, part_factors[i][:, op])
                planes = [tf.clip_by_value(p, 0.0, 1.0) for p in planes]
            outputs.append(tf.stack(planes, axis=-1))
        outputs.append(parts[-1])
        out = tf.dynamic_stitch(indices, outputs)
        out.set_shape(images.shape)
        return out

    def _transform_dense(self, images, factors, order):
        """The accelerator form: static shapes, no partition (XLA-compilable).

        At each of the four positions every image takes the op its order puts there:
        the enabled ops are computed for the whole batch and selected per image
        (exact: a 0/1 selection), so each image still goes through its own four ops.
        """
        planes = tf.unstack(images, axis=-1)
        for position in range(4):
            op_here = order[:, position]  # [B], 4 = untouched
            out = planes
            for op in range(4):
                candidate = self._planes_op(op, planes, factors[:, op])
                candidate = [tf.clip_by_value(p, 0.0, 1.0) for p in candidate]
                mask = tf.cast(tf.equal(op_here, op), images.dtype)[:, None, None]
                out = [c * mask + o * (1.0 - mask) for c, o in zip(candidate, out, strict=True)]
            planes = out
        return tf.stack(planes, axis=-1)

    def _image_op(self, op, image, factor):
        """Op `op` on one image with a scalar factor: TensorFlow's fused kernels."""
        if op == 0 and self.brightness > 0:
            return image * factor if self.impl == "simclrv2" else image + factor
        if op == 1 and self.contrast > 0:
            return tf.image.adjust_contrast(image, factor)
        if op == 2 and self.saturation > 0:
            return tf.image.adjust_saturation(image, factor)
        if op == 3 and self.hue > 0:
            return tf.image.adjust_hue(image, factor)
        return image

    def _transform_each(self, images, factors, order, orders):
        """The same ops for a small static batch (the views of one file in tf.data).

        Each image runs only the branch of its own order (`tf.switch_case`) with the
        authors' `tf.image.adjust_*` kernels and scalar factors (one pass per op, the
        fastest form for a single image), rather than a partition into 25 groups.
        """
        code = order[:, 0] * 64 + order[:, 1] * 16 + order[:, 2] * 4 + order[:, 3]
        outputs = []
        for j in range(images.shape[0]):
            image = images[j : j + 1]
            image_factors = factors[j : j + 1]

            def branch(perm, image=image, image_factors=image_factors):
                def fn():
                    out = image
                    for op in perm:
                        out = tf.clip_by_value(
                            self._image_op(op, out, image_factors[0, op]), 0.0, 1.0
                        )
                    return out

                return fn

            branches = {
                perm[0] * 64 + perm[1] * 16 + perm[2] * 4 + perm[3]: branch(perm) for perm in orders
            }
            keys = sorted(branches)
            index = tf.fill([], len(keys))
            for i, key in enumerate(keys):
                index = tf.where(tf.equal(code[j], key), i, index)
            fns = [branches[key] for key in keys] + [lambda image=image: image]
            outputs.append(tf.switch_case(index, fns))
        out = tf.concat(outputs, axis=0)
        out.set_shape(images.shape)
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "strength": self.strength,
            "brightness": self.brightness,
            "contrast": self.contrast,
            "saturation": self.saturation,
            "hue": self.hue,
            "probability": self.probability,
            "random_order": self.random_order,
            "impl": self.impl,
        }
