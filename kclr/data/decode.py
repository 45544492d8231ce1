"""Decoding with the crop folded in: `decode_and_crop_jpeg`, then resize of the small crop.

This is the first per-file step of the data pipeline (decode is per image by nature); the
pipeline then runs the other augmentations on the same file's views.
"""

from __future__ import annotations

import tensorflow as tf

JPEG_MAGIC = b"\xff\xd8\xff"

TFRECORD_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "image/filename": tf.io.FixedLenFeature([], tf.string, default_value=""),
}


def parse_tfrecord(record, label_offset: int = 0):
    """Parses an ImageNet-layout example: `(encoded bytes, int32 label, file name)`."""
    features = tf.io.parse_single_example(record, TFRECORD_FEATURES)
    label = tf.cast(features["image/class/label"], tf.int32) + label_offset
    return features["image/encoded"], label, features["image/filename"]


def is_jpeg(data):
    return tf.equal(tf.strings.substr(data, 0, 3), JPEG_MAGIC)


def image_shape(data):
    """`[height, width]` of an encoded image (JPEG: from the header only)."""
    return tf.cond(
        is_jpeg(data),
        lambda: tf.image.extract_jpeg_shape(data)[:2],
        lambda: tf.shape(tf.io.decode_image(data, channels=3, expand_animations=False))[:2],
    )


def decode_crops(data, boxes_fn, size, method="bicubic", flips=None, dtype=tf.float32):
    """Decodes the crops of one encoded image and resizes each to `size`.

    Args:
        data: encoded image (JPEG, PNG, GIF, BMP; grayscale and CMYK JPEGs included).
        boxes_fn: `fn(height, width) -> int32 [V, 4]` crop boxes `(y, x, h, w)`, with
            a static number of views `V`.
        size: `(height, width)` of the output.
        method: resize method (`"bicubic"`, official, or `"bilinear"`).
        flips: optional bool `[V]`: flip view `v` left-right after its resize (the
            flip is a resampling like the crop, so it is done here, per view).
        dtype: `tf.float32` (values in `[0, 1]` up to resize overshoot) or `tf.uint8`
            (the resized crop rounded to `0..255`, overshoot clipped: a quarter of the
            memory, for a photometric stage that runs on the accelerator).

    Returns:
        `dtype` `[V, size[0], size[1], 3]`.
        A single JPEG crop is cropped before decoding (`tf.image.decode_and_crop_jpeg`),
        so only the crop's rows and columns are decoded; for several views one full
        decode is cheaper and is used instead; other formats are decoded whole.
    """

    def resize(crop, v):
        # Resizing the uint8 crop and scaling after is `resize(convert_image_dtype(crop))`
        # (the resize is linear) up to float rounding, without a float copy of the crop.
        if crop.dtype == tf.uint8 and dtype == tf.uint8:
            out = tf.saturate_cast(tf.round(tf.image.resize(crop, size, method=method)), tf.uint8)
        elif crop.dtype == tf.uint8:
            out = tf.image.resize(crop, size, method=method) * (1.0 / 255.0)
        else:
            out = tf.image.resize(tf.image.convert_image_dtype(crop, tf.float32), size, method)
            if dtype == tf.uint8:
                out = tf.image.convert_image_dtype(tf.clip_by_value(out, 0.0, 1.0), tf.uint8)
        if flips is None:
            return out
        return tf.cond(flips[v], lambda: tf.reverse(out, [1]), lambda: out)

    def from_jpeg():
        shape = tf.image.extract_jpeg_shape(data)
        boxes = boxes_fn(shape[0], shape[1])
        if boxes.shape[0] > 1:
            # Several crops of one file: libjpeg entropy-decodes every row above a crop
            # window, so one decode is cheaper than one cropped decode per view. That
            # decode is cropped to the union of the views (the rows below it and the
            # columns beside it are not decoded; same pixels as a full decode).
            low = tf.reduce_min(boxes[:, :2], axis=0)
            high = tf.reduce_max(boxes[:, :2] + boxes[:, 2:], axis=0)
            window = tf.concat([low, high - low], axis=0)
            image = tf.image.decode_and_crop_jpeg(data, window, channels=3)
            return from_image(image, boxes - tf.concat([low, [0, 0]], axis=0)[None])
        return tf.stack(
            [
                resize(tf.image.decode_and_crop_jpeg(data, boxes[v], channels=3), v)
                for v in range(boxes.shape[0])
            ]
        )

    def from_image(image, boxes):
        crops = []
        for v in range(boxes.shape[0]):
            y, x, h, w = tf.unstack(boxes[v])
            crops.append(resize(image[y : y + h, x : x + w], v))
        return tf.stack(crops)

    def from_other():
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        shape = tf.shape(image)
        return from_image(image, boxes_fn(shape[0], shape[1]))

    return tf.cond(is_jpeg(data), from_jpeg, from_other)
