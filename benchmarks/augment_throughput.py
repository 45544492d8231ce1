"""Host throughput of kclr's pretraining input pipeline vs the authors' per-image host part.

All pipelines read the same JPEG files and make 2 views at 224 px per image (SimCLR
ImageNet recipe, blur excluded from every host part: the authors blur on the
accelerator, in the model). Measured in one process, interleaved, best of `--repeats`
rounds (each round builds a fresh iterator, discards `--warmup` batches, then times
`--steps` batches of `--batch-size`):

- `kclr_host_photometric_on_device`: `pretraining_dataset(photometric="device")`, the
  host part when colour and grayscale run in the train step: one decode per file,
  crop, bicubic resize and flip on uint8, uint8 views out;
- `kclr_host_photometric_on_host`: `pretraining_dataset(photometric="host", blur=False)`:
  the same plus colour jitter and grayscale in tf.data, float32 views out;
- `authors_per_image_host_part`: the authors' `preprocess_for_train` mapped per image
  (decode, float conversion, crop + bicubic resize, flip, colour jitter, grayscale, clip;
  `data_util.py` semantics) - what the authors' host does while their accelerator blurs;
- `decode_only`: read + `decode_jpeg` of every file and nothing else (the floor);
- `kclr_host_photometric_on_device_bilinear` (named faster semantics, not the default):
  as the first with `interpolation="bilinear"`.

Usage:

    python benchmarks/augment_throughput.py --images DIR [--batch-size 256] [--steps 3]

DIR is filled with 512 synthetic JPEGs of about 400x400 when it holds no JPEGs. Prints one
JSON object: images/s of each (best round, all rounds listed) and the ratios to the
authors' per-image host part and to decode alone.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import time


# ----------------------------------------------------------------------------- images
def generate_images(directory: pathlib.Path, count: int, seed: int = 0) -> None:
    import numpy as np
    import tensorflow as tf

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        height, width = (int(s) for s in rng.integers(360, 441, size=2))
        coarse = rng.random((1, 12, 12, 3)).astype("float32")
        image = tf.image.resize(coarse, [height, width], "bicubic")[0].numpy()
        image += rng.normal(0.0, 0.04, image.shape)
        image = (np.clip(image, 0, 1) * 255).astype("uint8")
        tf.io.write_file(str(directory / f"img_{i:05d}.jpg"), tf.io.encode_jpeg(image, quality=90))


# -------------------------------------------------------------------------- baseline
def official_pipeline(files, batch_size, image_size, blur=False):
    """The authors' per-image augmentation (SimCLR tf2/data_util.py semantics) in tf.data.

    `blur=True` adds their `batch_random_blur` on the batch (they run it in the model).
    """
    import tensorflow as tf

    def random_apply(func, p, x):
        return tf.cond(tf.less(tf.random.uniform([], 0, 1), p), lambda: func(x), lambda: x)

    def color_jitter_rand(image, brightness, contrast, saturation, hue):
        def apply_transform(i, x):
            def brightness_foo():
                factor = tf.random.uniform([], max(1.0 - brightness, 0), 1.0 + brightness)
                return x * factor

            def contrast_foo():
                return tf.image.random_contrast(x, lower=1 - contrast, upper=1 + contrast)

            def saturation_foo():
                return tf.image.random_saturation(x, lower=1 - saturation, upper=1 + saturation)

            def hue_foo():
                return tf.image.random_hue(x, max_delta=hue)

            return tf.cond(
                tf.less(i, 2),
                lambda: tf.cond(tf.less(i, 1), brightness_foo, contrast_foo),
                lambda: tf.cond(tf.less(i, 3), saturation_foo, hue_foo),
            )

        perm = tf.random.shuffle(tf.range(4))
        for i in range(4):
            image = apply_transform(perm[i], image)
            image = tf.clip_by_value(image, 0.0, 1.0)
        return image

    def to_grayscale(image):
        return tf.tile(tf.image.rgb_to_grayscale(image), [1, 1, 3])

    def crop_and_resize(image):
        bbox = tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4])
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            tf.shape(image),
            bounding_boxes=bbox,
            min_object_covered=0.1,
            aspect_ratio_range=(3 / 4, 4 / 3),
            area_range=(0.08, 1.0),
            max_attempts=100,
            use_image_if_no_bounding_boxes=True,
        )
        offset_y, offset_x, _ = tf.unstack(begin)
        target_height, target_width, _ = tf.unstack(size)
        image = tf.image.crop_to_bounding_box(
            image, offset_y, offset_x, target_height, target_width
        )
        return tf.image.resize([image], [image_size, image_size], method="bicubic")[0]

    def preprocess_for_train(image):
        image = crop_and_resize(image)
        image = tf.image.random_flip_left_right(image)
        image = random_apply(lambda x: color_jitter_rand(x, 0.8, 0.8, 0.8, 0.2), 0.8, image)
        image = random_apply(to_grayscale, 0.2, image)
        image = tf.reshape(image, [image_size, image_size, 3])
        return tf.clip_by_value(image, 0.0, 1.0)

    def per_image(path):  # the authors' pipeline decodes the whole image, then converts
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        image = tf.image.convert_image_dtype(image, tf.float32)
        return tf.concat([preprocess_for_train(image), preprocess_for_train(image)], -1)

    def gaussian_blur(image, kernel_size, sigma):
        radius = kernel_size // 2
        x = tf.cast(tf.range(-radius, radius + 1), tf.float32)
        blur_filter = tf.exp(-tf.pow(x, 2.0) / (2.0 * tf.pow(sigma, 2.0)))
        blur_filter /= tf.reduce_sum(blur_filter)
        blur_v = tf.tile(tf.reshape(blur_filter, [2 * radius + 1, 1, 1, 1]), [1, 1, 3, 1])
        blur_h = tf.tile(tf.reshape(blur_filter, [1, 2 * radius + 1, 1, 1]), [1, 1, 3, 1])
        blurred = tf.nn.depthwise_conv2d(image, blur_h, [1, 1, 1, 1], "SAME")
        return tf.nn.depthwise_conv2d(blurred, blur_v, [1, 1, 1, 1], "SAME")

    def batch_random_blur(images):
        views = tf.split(images, 2, axis=-1)
        out = []
        for view in views:
            sigma = tf.random.uniform([], 0.1, 2.0)
            blurred = gaussian_blur(view, image_size // 10, sigma)
            selector = tf.cast(tf.random.uniform([tf.shape(view)[0], 1, 1, 1]) < 0.5, tf.float32)
            out.append(tf.clip_by_value(blurred * selector + view * (1 - selector), 0.0, 1.0))
        return tf.stack(out, axis=1)

    dataset = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files)).repeat()
    dataset = dataset.map(per_image, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    if blur:  # the authors do this in the model, on [B, H, W, 6] split into views
        dataset = dataset.map(batch_random_blur, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------- timing
def decode_only_pipeline(files, batch_size):
    import tensorflow as tf

    def decode(path):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        return tf.shape(image)[0]  # keep the decode, drop the pixels

    dataset = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files)).repeat()
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(1)


def pipelines(directory, files, batch_size):
    import kclr.data

    def kclr_pipeline(**options):
        return kclr.data.pretraining_dataset(
            directory, recipe="simclr", image_size=224, views=2, global_batch_size=batch_size,
            blur=False, **options,
        )  # fmt: skip

    return {
        "kclr_host_photometric_on_device": kclr_pipeline(photometric="device"),
        "kclr_host_photometric_on_host": kclr_pipeline(photometric="host"),
        "authors_per_image_host_part": official_pipeline(files, batch_size, 224),
        "decode_only": decode_only_pipeline(files, batch_size),
        "kclr_host_photometric_on_device_bilinear": kclr_pipeline(
            photometric="device", interpolation="bilinear"
        ),
    }


def time_pipeline(dataset, batch_size, steps, warmup):
    iterator = iter(dataset)
    for _ in range(warmup):
        batch = next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        batch = next(iterator)
    elapsed = time.perf_counter() - start
    views = batch["views"] if isinstance(batch, dict) else batch
    del iterator  # stops its background work before the next pipeline is timed
    return batch_size * steps / elapsed, views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="folder of JPEGs (filled if empty)")
    parser.add_argument("--num-images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3, help="timed batches per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed batches per round")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--only", nargs="+", help="measure only these pipelines")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    directory = pathlib.Path(args.images)
    if not list(directory.glob("*.jpg")):
        generate_images(directory, args.num_images)
    files = sorted(str(p) for p in directory.glob("*.jpg"))
    candidates = pipelines(str(directory), files, args.batch_size)
    if args.only:
        candidates = {k: v for k, v in candidates.items() if k in args.only}
    runs: dict[str, list[float]] = {name: [] for name in candidates}
    dtypes = {}
    for _ in range(args.repeats):
        for name, dataset in candidates.items():
            speed, views = time_pipeline(dataset, args.batch_size, args.steps, args.warmup)
            runs[name].append(round(speed, 1))
            dtypes[name] = f"{views.dtype.name} {list(views.shape)}"
    best = {name: max(speeds) for name, speeds in runs.items()}
    ratios = {}
    for base in ("authors_per_image_host_part", "decode_only"):
        if base in best:
            ratios[f"vs_{base}"] = {
                name: round(value / best[base], 2) for name, value in best.items() if name != base
            }
    print(
        json.dumps(
            {
                "benchmark": "augment_throughput",
                "images": len(files),
                "image_size": 224,
                "views": 2,
                "blur": "excluded from every host part (the authors blur on the accelerator)",
                "global_batch_size": args.batch_size,
                "cpu_count": os.cpu_count(),
                "tensorflow": tf.__version__,
                "images_per_s": best,
                "ratios": ratios,
                "all_rounds_images_per_s": runs,
                "outputs": dtypes,
                "peak_rss_mb_process": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
