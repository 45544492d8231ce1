"""Batched tensor functions behind kclr's augmentation layers (crop boxes, resize, colour, blur).

Every function works on a whole batch with per-image parameters; none loops over images.
"""

from __future__ import annotations

import math

import tensorflow as tf

GRAYSCALE_WEIGHTS = (0.2989, 0.5870, 0.1140)  # tf.image.rgb_to_grayscale


# --------------------------------------------------------------------------- crop boxes
def sample_inception_boxes(
    seed,
    batch_size,
    height,
    width,
    area_range=(0.08, 1.0),
    aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0),
    min_object_covered=0.1,
    attempts=100,
):
    """Vectorised `tf.image.sample_distorted_bounding_box` with the whole image as the box.

    Same distribution as TensorFlow's kernel: per attempt the aspect ratio is uniform, the
    crop height is a uniform integer between the heights of the smallest and the largest
    allowed area, the width is `round(height * aspect)`, and the crop must cover at least
    `min_object_covered` of the image (so the effective minimum area is
    `max(area_range[0], min_object_covered)`). The first valid of `attempts` candidates
    drawn at once is kept; if none is valid the box is the whole image.

    Args:
        seed: stateless seed, int `[2]`.
        batch_size: number of boxes.
        height, width: image size (scalars, the same for the batch).

    Returns:
        int32 tensor `[batch_size, 4]` of `(offset_y, offset_x, crop_height, crop_width)`.
    """
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    shape = [batch_size, attempts]
    s_aspect, s_height, s_y, s_x = (
        tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), i) for i in range(4)
    )
    aspect = tf.random.stateless_uniform(
        shape, s_aspect, aspect_ratio_range[0], aspect_ratio_range[1]
    )
    min_area = area_range[0] * h * w
    max_area = area_range[1] * h * w
    crop_h = tf.round(tf.sqrt(min_area / aspect))
    max_h = tf.round(tf.sqrt(max_area / aspect))
    # Largest height whose rounded width still fits the image.
    capped = tf.floor((w + 0.5 - 1e-7) / aspect)
    capped = tf.where(tf.round(capped * aspect) > w, capped - 1.0, capped)
    max_h = tf.where(tf.round(max_h * aspect) > w, capped, max_h)
    max_h = tf.minimum(max_h, h)
    crop_h = tf.minimum(crop_h, max_h)
    u = tf.random.stateless_uniform(shape, s_height)
    crop_h = crop_h + tf.floor(u * (max_h - crop_h + 1.0))
    crop_h = tf.minimum(crop_h, max_h)
    crop_w = tf.round(crop_h * aspect)
    area = crop_w * crop_h
    # TensorFlow's rounding repairs: one pixel taller if too small, one shorter if too big.
    grow = area < min_area
    crop_h = tf.where(grow, crop_h + 1.0, crop_h)
    crop_w = tf.where(grow, tf.round(crop_h * aspect), crop_w)
    area = crop_w * crop_h
    shrink = area > max_area
    crop_h = tf.where(shrink, crop_h - 1.0, crop_h)
    crop_w = tf.where(shrink, tf.round(crop_h * aspect), crop_w)
    area = crop_w * crop_h
    valid = (
        (area >= min_area)
        & (area <= max_area)
        & (crop_w <= w)
        & (crop_h <= h)
        & (crop_w > 0)
        & (crop_h > 0)
        & (area >= min_object_covered * h * w)
    )
    y = tf.floor(tf.random.stateless_uniform(shape, s_y) * (h - crop_h))
    x = tf.floor(tf.random.stateless_uniform(shape, s_x) * (w - crop_w))
    boxes = tf.stack([y, x, crop_h, crop_w], axis=-1)  # [B, attempts, 4]
    return _first_valid(boxes, valid, h, w)


def sample_torchvision_boxes(
    seed,
    batch_size,
    height,
    width,
    area_range=(0.08, 1.0),
    aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0),
    attempts=10,
):
    """Vectorised `torchvision.transforms.RandomResizedCrop.get_params`.

    Area uniform in `area_range`, log-uniform aspect ratio, `attempts` tries, and a centre
    crop with the aspect ratio clamped to the range as fallback.

    Returns:
        int32 tensor `[batch_size, 4]` of `(offset_y, offset_x, crop_height, crop_width)`.
    """
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    shape = [batch_size, attempts]
    s_area, s_aspect, s_y, s_x = (
        tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), i) for i in range(4)
    )
    area = h * w * tf.random.stateless_uniform(shape, s_area, area_range[0], area_range[1])
    log_ratio = tf.random.stateless_uniform(
        shape, s_aspect, math.log(aspect_ratio_range[0]), math.log(aspect_ratio_range[1])
    )
    aspect = tf.exp(log_ratio)
    crop_w = tf.round(tf.sqrt(area * aspect))
    crop_h = tf.round(tf.sqrt(area / aspect))
    valid = (crop_w > 0) & (crop_w <= w) & (crop_h > 0) & (crop_h <= h)
    y = tf.floor(tf.random.stateless_uniform(shape, s_y) * (h - crop_h + 1.0))
    x = tf.floor(tf.random.stateless_uniform(shape, s_x) * (w - crop_w + 1.0))
    boxes = tf.stack([y, x, crop_h, crop_w], axis=-1)
    # Fallback: centre crop, aspect ratio clamped to the range.
    in_ratio = w / h
    fb_w = tf.where(
        in_ratio < aspect_ratio_range[0],
        w,
        tf.where(in_ratio > aspect_ratio_range[1], tf.round(h * aspect_ratio_range[1]), w),
    )
    fb_h = tf.where(
        in_ratio < aspect_ratio_range[0],
        tf.round(w / aspect_ratio_range[0]),
        h,
    )
    fallback = tf.stack([tf.floor((h - fb_h) / 2.0), tf.floor((w - fb_w) / 2.0), fb_h, fb_w])
    return _first_valid(boxes, valid, h, w, fallback=fallback)


def _first_valid(boxes, valid, h, w, fallback=None):
    any_valid = tf.reduce_any(valid, axis=1)
    first = tf.argmax(tf.cast(valid, tf.int32), axis=1, output_type=tf.int32)
    chosen = tf.gather(boxes, first, axis=1, batch_dims=1)  # [B, 4]
    if fallback is None:
        fallback = tf.stack([0.0, 0.0, h, w])
    fallback = tf.broadcast_to(fallback, tf.shape(chosen))
    chosen = tf.where(any_valid[:, None], chosen, fallback)
    return tf.cast(chosen, tf.int32)


def center_crop_box(height, width, crop_proportion=0.875, aspect_ratio=1.0):
    """The official SimCLR `center_crop` box: `(offset_y, offset_x, crop_h, crop_w)`.

    Aspect-preserving: keeps `crop_proportion` of the shorter side for a square target
    (`aspect_ratio` = target height / target width). Offsets are `((size - crop) + 1) // 2`.
    """
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    wider_request = aspect_ratio > w / h
    crop_h = tf.where(
        wider_request,
        tf.math.rint(crop_proportion / aspect_ratio * w),
        tf.math.rint(crop_proportion * h),
    )
    crop_w = tf.where(
        wider_request,
        tf.math.rint(crop_proportion * w),
        tf.math.rint(crop_proportion * aspect_ratio * h),
    )
    crop_h = tf.cast(crop_h, tf.int32)
    crop_w = tf.cast(crop_w, tf.int32)
    height = tf.cast(height, tf.int32)
    width = tf.cast(width, tf.int32)
    return tf.stack([(height - crop_h + 1) // 2, (width - crop_w + 1) // 2, crop_h, crop_w])


# --------------------------------------------------------------------- crop + resize
def _keys_cubic(x):
    x = tf.abs(x)
    near = (1.5 * x - 2.5) * x * x + 1.0
    far = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return tf.where(x >= 2.0, 0.0, tf.where(x >= 1.0, far, near))


def _triangle(x):
    return tf.maximum(0.0, 1.0 - tf.abs(x))


def _resize_matrix(offset, length, in_size, out_size, method):
    """`[B, out_size, in_size]` weights resampling the window `[offset, offset+length)`.

    Same weights as `tf.image.resize(crop, ..., antialias=False)` (half-pixel centres,
    Keys cubic a=-0.5 or triangle, taps outside the crop dropped and renormalised).
    """
    offset = tf.cast(offset, tf.float32)[:, None, None]
    length = tf.cast(length, tf.float32)[:, None, None]
    i = tf.range(out_size, dtype=tf.float32)[None, :, None]
    x = tf.range(in_size, dtype=tf.float32)[None, None, :]
    location = (i + 0.5) * (length / float(out_size)) - 0.5  # in crop coordinates
    rel = x - offset
    if method == "bicubic":
        # TensorFlow's bicubic kernel reads its weights from a table of 1024 steps per
        # pixel; quantising the fractional position the same way makes kclr bit-close.
        base = tf.floor(location)
        location = base + tf.round((location - base) * 1024.0) / 1024.0
        weights = _keys_cubic(rel - location)
    else:
        weights = _triangle(rel - location)
    weights = tf.where((rel >= 0.0) & (rel < length), weights, 0.0)
    return weights / tf.maximum(tf.reduce_sum(weights, axis=-1, keepdims=True), 1e-12)


def crop_and_resize(images, boxes, size, method="bicubic"):
    """Crops `boxes` (`[B, 4]` int `(y, x, h, w)`) from `images` and resizes to `size`.

    Batched and exact: equals `tf.image.resize(crop, size, method)` of each crop (no
    antialiasing, as in the official SimCLR code), computed as two batched matrix
    products with per-image separable interpolation weights.
    """
    out_h, out_w = size
    in_h = images.shape[1] if images.shape[1] is not None else tf.shape(images)[1]
    in_w = images.shape[2] if images.shape[2] is not None else tf.shape(images)[2]
    rows = _resize_matrix(boxes[:, 0], boxes[:, 2], in_h, out_h, method)  # [B, out_h, H]
    cols = _resize_matrix(boxes[:, 1], boxes[:, 3], in_w, out_w, method)  # [B, out_w, W]
    out = tf.einsum("bsh,bhwc->bswc", rows, images)
    return tf.einsum("btw,bswc->bstc", cols, out)


# --------------------------------------------------------------------------- colour
def grayscale(images):
    """`tf.image.rgb_to_grayscale` tiled back to 3 channels."""
    # A broadcast multiply-sum rather than `tf.tensordot`: tensordot's reshape went wrong
    # under `tf.function` when the batch came out of `tf.dynamic_partition` with a constant seed.
    weights = tf.constant(GRAYSCALE_WEIGHTS, images.dtype)
    gray = tf.reduce_sum(images * weights, axis=-1, keepdims=True)
    return tf.concat([gray, gray, gray], axis=-1)


def adjust_contrast(images, factor):
    """`tf.image.adjust_contrast` with one factor per image."""
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    return (images - mean) * factor[:, None, None, None] + mean


def adjust_saturation(images, factor):
    """`tf.image.adjust_saturation` (HSV saturation scaled and clipped) per image, in closed form.

    In HSV, every channel is `v - s * v * g(hue)`, so scaling `s` to `s' = clip(s * f, 0, 1)`
    moves each channel towards the maximum: `c' = v - (s' / s) (v - c)`. No HSV round trip.
    """
    v = tf.reduce_max(images, axis=-1, keepdims=True)
    low = tf.reduce_min(images, axis=-1, keepdims=True)
    chroma = v - low
    factor = factor[:, None, None, None]
    # s'/s = min(f, 1/s) = min(f, v / (v - min)); grey pixels (chroma 0) are unchanged.
    ratio = tf.minimum(factor, v / tf.maximum(chroma, 1e-12))
    ratio = tf.maximum(ratio, 0.0)
    return v - ratio * (v - images)


def adjust_hue(images, delta):
    """`tf.image.adjust_hue` with one hue shift per image (HSV rotation)."""
    hsv = tf.image.rgb_to_hsv(images)
    hue = tf.math.floormod(hsv[..., 0] + delta[:, None, None] + 1.0, 1.0)
    return tf.image.hsv_to_rgb(tf.stack([hue, hsv[..., 1], hsv[..., 2]], axis=-1))


# ----------------------------------------------------------------------------- blur
def gaussian_taps(sigma, kernel_size):
    """Normalised 1-D Gaussian taps, `[..., 2 * (kernel_size // 2) + 1]` for sigma `[...]`.

    As the official `gaussian_blur`: radius `kernel_size // 2`, so kernel size 22 gives 23 taps.
    """
    radius = int(kernel_size) // 2
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    sigma = tf.cast(sigma, tf.float32)[..., None]
    taps = tf.exp(-tf.square(x) / (2.0 * tf.square(sigma)))
    return taps / tf.reduce_sum(taps, axis=-1, keepdims=True)


def separable_blur(images, taps):
    """Separable blur with per-image taps `[B, T]`, zero 'SAME' padding (official semantics).

    The batch is folded into the channel axis so that one depthwise convolution blurs
    every image with its own kernel.
    """
    if images.shape[0] is not None and images.shape[0] > 0:
        return _separable_blur(images, taps)  # static batch (the accelerator form)
    # An empty batch (no image selected) would give the convolution an empty filter.
    return tf.cond(tf.shape(images)[0] > 0, lambda: _separable_blur(images, taps), lambda: images)


def _separable_blur(images, taps):
    batch = tf.shape(images)[0]
    height = tf.shape(images)[1]
    width = tf.shape(images)[2]
    channels = images.shape[-1] or 3
    num_taps = taps.shape[-1]
    x = tf.transpose(images, [1, 2, 0, 3])  # [H, W, B, C]
    x = tf.reshape(x, [1, height, width, batch * channels])
    kernel = tf.repeat(taps, channels, axis=0)  # [B*C, T]
    kernel = tf.transpose(kernel)  # [T, B*C]
    vertical = tf.reshape(kernel, [num_taps, 1, -1, 1])
    horizontal = tf.reshape(kernel, [1, num_taps, -1, 1])
    x = tf.nn.depthwise_conv2d(x, vertical, [1, 1, 1, 1], "SAME")
    x = tf.nn.depthwise_conv2d(x, horizontal, [1, 1, 1, 1], "SAME")
    x = tf.reshape(x, [height, width, batch, channels])
    return tf.transpose(x, [2, 0, 1, 3])


# ------------------------------------------------------- colour on planes (fast path)
# The colour jitter works on the three channel planes `[N, H, W]` separately: channel
# max / min / weighted sums become element-wise ops on contiguous memory instead of
# reductions over a last axis of size 3.
def _expand(factor):
    return factor[:, None, None]


def planes_brightness_multiplicative(planes, factor):
    return [p * _expand(factor) for p in planes]


def planes_brightness_additive(planes, delta):
    return [p + _expand(delta) for p in planes]


def planes_contrast(planes, factor):
    """`tf.image.adjust_contrast`: `(x - mean) * f + mean`, mean per image and channel."""
    f = _expand(factor)
    return [p * f + tf.reduce_mean(p, axis=[1, 2], keepdims=True) * (1.0 - f) for p in planes]


def planes_saturation(planes, factor):
    """`tf.image.adjust_saturation` in closed form (see `adjust_saturation`)."""
    r, g, b = planes
    v = tf.maximum(tf.maximum(r, g), b)
    chroma = v - tf.minimum(tf.minimum(r, g), b)
    ratio = tf.maximum(tf.minimum(_expand(factor), v / tf.maximum(chroma, 1e-12)), 0.0)
    return [v - ratio * (v - p) for p in planes]


def planes_hue(planes, delta):
    """`tf.image.adjust_hue` in closed form: rotate the HSV hue, keep value and chroma.

    With `v = max`, `c = max - min` and the hue `h` in sixths of a turn, channel `n`
    (5 for red, 3 for green, 1 for blue) is `v - c * clip(min(k, 4 - k), 0, 1)` with
    `k = (n + h) mod 6`, the usual HSV-to-RGB formula.
    """
    r, g, b = planes
    v = tf.maximum(tf.maximum(r, g), b)
    chroma = v - tf.minimum(tf.minimum(r, g), b)
    safe = tf.where(chroma > 0.0, chroma, 1.0)
    hue = tf.where(
        v == r, (g - b) / safe, tf.where(v == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    hue = hue + 6.0 * _expand(delta)

    def channel(n):
        k = tf.math.floormod(hue + n, 6.0)
        return v - chroma * tf.clip_by_value(tf.minimum(k, 4.0 - k), 0.0, 1.0)

    return [channel(5.0), channel(3.0), channel(1.0)]
