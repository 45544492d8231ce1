"""The files of TensorBoard's embedding projector, for a look at an embedding with pictures.

`write_projector(encoder, data, directory)` encodes a seeded sample of at most
`max_examples` images of `data` and writes, in `directory`:

| file | what |
|---|---|
| `tensors.tsv` | the features, one row of tab-separated floats per image |
| `metadata.tsv` | a `path`/`label` header, then one row per image (same order) |
| `sprite.png` | the images as square thumbnails, row by row on a `grid x grid` sheet |
| `projector_config.pbtxt` | the projector's config (text protobuf) naming the three |

`tensorboard --logdir DIRECTORY` then shows the embedding (PCA, t-SNE, UMAP) with each
point drawn as its image and labelled by its metadata. The config text is written
here directly (its four fields), so nothing beyond TensorFlow is needed to write it.
TensorBoard reads a sprite of at most 8192 x 8192 pixels: thumbnails shrink (down to
`MIN_THUMBNAIL` pixels) to fit the sample's grid there.

Example:

```python
encoder = kclr.zoo.load("runs/demo/export")
kclr.evaluation.projector.write_projector(encoder, "demo", "runs/demo/projector")
```
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Any

import numpy as np

from kclr.durable import atomic_write

TENSORS_FILE = "tensors.tsv"
METADATA_FILE = "metadata.tsv"
SPRITE_FILE = "sprite.png"
CONFIG_FILE = "projector_config.pbtxt"
MAX_SPRITE_SIDE = 8192  # TensorBoard's limit
THUMBNAIL = 64
MIN_THUMBNAIL = 8
MAX_EXAMPLES = 2000

RUN_SUBDIR = "train"  # of a run's TensorBoard folder: the projector sits beside the scalars

__all__ = ["MAX_EXAMPLES", "describe", "projector_files", "write_projector", "write_run_projector"]


def write_projector(
    encoder,
    data: Any,
    directory: str | os.PathLike,
    split: str = "test",
    image_size: int = 224,
    batch_size: int = 256,
    max_examples: int = MAX_EXAMPLES,
    seed: int = 0,
    thumbnail: int = THUMBNAIL,
    sample: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Encodes a seeded sample of `data` with `encoder` and writes the projector's files.

    Args:
        encoder: the model (frozen, BatchNorm in inference mode).
        data: anything `kclr.data.resolve_source` accepts; a folder without `split`
            is read whole.
        directory: the folder to write (made if missing; the four files are replaced).
        split: `"train"` or `"test"`.
        image_size: the encoder's input side.
        batch_size: batch size of feature extraction.
        max_examples: the sample's size bound (the first `max_examples` of a seeded
            shuffle).
        seed: the sample's seed.
        thumbnail: the side of a thumbnail in the sprite.
        sample: `kclr.evaluation.neighbours.sample_examples(...)` of these arguments when
            the caller already has it (`kclr fit` shares one with its neighbours grid).

    Returns:
        `projector_files`'s dict, plus `total` (the split's size, None when unknown)
        and `source` (its description).
    """
    from kclr.evaluation.neighbours import sample_examples

    if sample is None:
        sample = sample_examples(encoder, data, split, image_size, batch_size, max_examples, seed)
    info = projector_files(
        directory, sample["features"], sample["images"], sample["filenames"],
        sample["labels"], sample["class_names"], thumbnail,
    )  # fmt: skip
    return {**info, "total": sample["total"], "source": sample["source"]}


def write_run_projector(
    encoder,
    data: Any,
    log_dir,
    split: str,
    image_size: int,
    max_examples: int,
    seed: int,
    echo=print,
    sample: dict[str, Any] | None = None,
) -> pathlib.Path | None:
    """The projector of a `kclr fit` run, in `log_dir/train` beside its TensorBoard scalars,
    so that `tensorboard --logdir RUN/logs` shows both; None (and a line) when it fails."""
    directory = pathlib.Path(log_dir) / RUN_SUBDIR
    try:
        info = write_projector(
            encoder, data, directory, split=split, image_size=image_size,
            max_examples=max_examples, seed=seed, sample=sample,
        )  # fmt: skip
    except (ValueError, OSError) as error:
        echo(f"No embedding projector: {error}")
        return None
    echo(describe(info, max_examples, seed))
    return directory


def describe(info: dict[str, Any], max_examples: int, seed: int) -> str:
    """The line saying what `write_projector` wrote (and whether it is a sample)."""
    total = info["total"]
    if total is not None and total > info["count"]:
        what = f"a seeded sample (seed {seed}) of {info['count']} of {total} images"
    elif total is None and info["count"] >= max_examples:
        what = f"the first {info['count']} images of a seeded shuffle (seed {seed})"
    else:
        what = f"all {info['count']} images"
    return (
        f"Embedding projector: {what} of {info['source']!r}, {info['dimension']}-d, sprite "
        f"{info['grid']}x{info['grid']} of {info['thumbnail']}px thumbnails in "
        f"{info['directory']} (tensorboard --logdir {info['directory']})."
    )


def projector_files(
    directory: str | os.PathLike,
    features: np.ndarray,
    images: np.ndarray,
    filenames: list[str],
    labels: np.ndarray | None = None,
    class_names: list[str] | None = None,
    thumbnail: int = THUMBNAIL,
) -> dict[str, Any]:
    """Writes the four projector files of `features` `[N, D]` and `images` `[N, H, W, 3]`.

    Returns:
        `{"directory", "count", "dimension", "grid", "thumbnail", "sprite_size", "files"}`.
    """
    import tensorflow as tf

    features = np.asarray(features, np.float32)
    images = np.asarray(images)
    count = len(features)
    if count == 0 or len(images) != count or len(filenames) != count:
        raise ValueError(
            f"The projector needs one image and one file name per embedding; received "
            f"{count} embeddings, {len(images)} images and {len(filenames)} file names."
        )
    grid = math.ceil(math.sqrt(count))
    # No larger than the images themselves (a bigger thumbnail shows nothing more and makes
    # the sprite slow to write), nor than TensorBoard's sprite allows.
    side = max(MIN_THUMBNAIL, min(int(thumbnail), max(images.shape[1:3]), MAX_SPRITE_SIDE // grid))
    if grid * side > MAX_SPRITE_SIDE:
        raise ValueError(
            f"{count} images do not fit TensorBoard's {MAX_SPRITE_SIDE}-pixel sprite at "
            f"{MIN_THUMBNAIL} pixels each; sample fewer (max_examples)."
        )
    if images.dtype != np.uint8:  # [0, 1] floats
        images = np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)
    small = tf.image.resize(images, (side, side), antialias=True)
    small = tf.cast(tf.clip_by_value(tf.round(small), 0, 255), tf.uint8).numpy()
    sheet = np.zeros([grid * side, grid * side, 3], np.uint8)
    for i, image in enumerate(small):
        row, col = divmod(i, grid)
        sheet[row * side : (row + 1) * side, col * side : (col + 1) * side] = image
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = ["\t".join(f"{v:.6g}" for v in vector) for vector in features]
    meta = ["path\tlabel"] + [
        f"{_cell(name)}\t{_label(labels, class_names, i)}" for i, name in enumerate(filenames)
    ]
    config = (
        "embeddings {\n"
        '  tensor_name: "kclr_features"\n'
        f'  tensor_path: "{TENSORS_FILE}"\n'
        f'  metadata_path: "{METADATA_FILE}"\n'
        "  sprite {\n"
        f'    image_path: "{SPRITE_FILE}"\n'
        f"    single_image_dim: {side}\n"
        f"    single_image_dim: {side}\n"
        "  }\n"
        "}\n"
    )
    files = [
        atomic_write(directory / TENSORS_FILE, ("\n".join(rows) + "\n").encode()),
        atomic_write(directory / METADATA_FILE, ("\n".join(meta) + "\n").encode("utf-8")),
        atomic_write(directory / SPRITE_FILE, tf.io.encode_png(sheet).numpy()),
        atomic_write(directory / CONFIG_FILE, config.encode()),
    ]
    return {
        "directory": directory, "count": count, "dimension": int(features.shape[1]),
        "grid": grid, "thumbnail": side, "sprite_size": (grid * side, grid * side),
        "files": files,
    }  # fmt: skip


def _label(labels, class_names, i: int) -> str:
    if labels is None:
        return ""
    label = int(labels[i])
    if class_names and 0 <= label < len(class_names):
        return _cell(class_names[label])
    return str(label)


def _cell(text: str) -> str:
    """A TSV cell: tabs and line breaks become spaces."""
    return " ".join(str(text).replace("\t", " ").splitlines())
