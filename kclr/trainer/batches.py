"""From a data element to the view-major image batch of a train step, on the device.

`ContrastiveTrainer` takes `{"views": [B, V, H, W, C], "labels": [B]}` (or a tuple, or
raw images with a device augmenter) and runs every view through the encoder as one
view-major batch `[V*B, H, W, C]`, as the official code does. `ViewBatches` holds that
preparation: unpacking, the view-major reshape, the photometric stage applied on the
device once per step (`augment`, or `augment_rows` on a part of the batch, as the
gradient-cached step does chunk by chunk). The module's functions check that a batch
divides across the replicas and the chunks.
"""

from __future__ import annotations

import tensorflow as tf

from kclr.augment.base import RNG_ALG, AugmentationLayer, DeviceBatch
from kclr.losses.core import replica_info


class ViewBatches:
    """Turns a batch's views into the view-major images of a step (the trainer owns one).

    Args:
        device_augmenter: optional layer applied on the device to training images
            `[V*B, H, W, C]` (a kclr `AugmentationLayer` draws per image, by row).
        num_views: views made from raw images `[B, H, W, C]` (needs a device augmenter).
        augment_seed: seed of the device augmentation stream.

    Nothing is stored between calls: the augmentation of a step depends only on
    `augment_seed`, the `step` passed in and each image's row in the global batch.
    """

    def __init__(self, device_augmenter=None, num_views: int = 2, augment_seed: int = 0):
        self.device_augmenter = device_augmenter
        self.num_views = int(num_views)
        self.augment_seed = int(augment_seed)

    @staticmethod
    def unpack(data):
        """`(views, labels)` of a data element (dict, tuple or views; labels may be `None`)."""
        labels = None
        if isinstance(data, dict):
            if "views" not in data:
                raise ValueError(
                    "ContrastiveTrainer expects dict elements with a 'views' key "
                    f"([B, V, H, W, 3]); received keys {sorted(data)}. Build the dataset "
                    "with `kclr.data.pretraining_dataset`."
                )
            views, labels = data["views"], data.get("labels")
        elif isinstance(data, (tuple, list)):
            views = data[0]
            labels = data[1] if len(data) > 1 else None
        else:
            views = data
        return views, labels

    def to_images(self, views, training, step=None):
        """Returns view-major images `[V*B, H, W, C]`, the view count and the batch.

        Training images go through the device augmenter with the seed of `step` (the
        optimizer's iterations; `None` counts as step 0).
        """
        rank = views.shape.rank
        if rank == 4:
            if self.device_augmenter is None:
                raise ValueError(
                    "ContrastiveTrainer received images of shape "
                    f"{views.shape} ([B, H, W, C]) but needs views [B, V, H, W, C]. "
                    "Batch views with `kclr.augment.MultiView`, or pass a "
                    "`device_augmenter` to make views on the device."
                )
            batch = tf.shape(views)[0]
            images = tf.concat([views] * self.num_views, axis=0)
            num_views = self.num_views
        elif rank == 5:
            batch = tf.shape(views)[0]
            num_views = self.num_views_of(views)
            # [B, V, H, W, C] -> [V, B, H, W, C] -> [V*B, H, W, C], as the official code.
            images = tf.reshape(
                tf.transpose(views, [1, 0, 2, 3, 4]),
                tf.concat([[-1], tf.shape(views)[2:]], axis=0),
            )
        else:
            raise ValueError(
                f"Expected views of shape [B, V, H, W, C]; received shape {views.shape}."
            )
        if training:
            return self.augment(images, num_views, step), num_views, batch
        if images.dtype.is_integer:
            images = tf.image.convert_image_dtype(images, tf.float32)
        augmenter = self.device_augmenter
        if augmenter is not None and not augmenter.built:
            # Built, not applied (evaluation does not augment): otherwise Keras warns
            # of unbuilt state when the trainer is first called outside training.
            augmenter(images[:1], training=False)
        return images, num_views, batch

    @staticmethod
    def num_views_of(views):
        """`V` of views `[B, V, H, W, C]`, or a clear error."""
        num_views = views.shape[1]
        if num_views is None or num_views < 2:
            raise ValueError(
                f"Contrastive training needs at least 2 views; received views of shape {views.shape}."
            )
        return num_views

    def augment(self, images, num_views, step=None):
        """Applies `device_augmenter` to the local batch of views, once per step.

        Args:
            images: view-major `[V*B, H, W, C]` local images, uint8 or float.
            num_views: `V`.
            step: the optimizer's iterations (the seed's step; `None`: 0).

        Returns:
            float32 `[V*B, H', W', C]` images (uint8 input scaled to `[0, 1]`).

        Per-image random parameters come from the stateless seed
        `(augment_seed, step)`; each replica draws them for the
        global batch `[V*N]` (view-major, replica `r` holding samples
        `r*B .. r*B+B-1` of every view) and keeps its rows, so a step on R replicas
        augments exactly as one step on a single device.
        """
        if not self.augments_by_rows():
            if images.dtype.is_integer:
                images = tf.image.convert_image_dtype(images, tf.float32)
            return self.device_augmenter(images, training=True)
        if replica_info()[0] == 1:
            return self.augment_rows(images, None, None, step)  # the rows are the batch
        rows = global_rows(tf.shape(images)[0] // num_views, num_views)
        return self.augment_rows(images, *rows, step)

    def augments_by_rows(self):
        """True when the device stage can run on any part of the batch: nothing to
        augment, or a kclr augmentation layer (per-image draws, see `augment_rows`)."""
        return isinstance(self.device_augmenter, AugmentationLayer | None)

    def augment_rows(self, images, rows, total, step=None):
        """The photometric stage on rows `rows` of the global view-major batch of
        `total` images (`rows=None`: all of it); float32 images out.

        Per-image draws depend only on the seed and the row, so any split of the batch
        (replicas, gradient-cache chunks) augments exactly as the whole batch at once.
        """
        if self.device_augmenter is None:
            if images.dtype.is_integer:
                images = tf.image.convert_image_dtype(images, tf.float32)
            return images
        step = tf.constant(0, tf.int64) if step is None else tf.cast(step, tf.int64)
        seed = tf.random.experimental.stateless_fold_in(
            tf.constant([self.augment_seed, 0], tf.int64), step, alg=RNG_ALG
        )
        return self.device_augmenter(
            images, training=True, seed=seed, device=DeviceBatch(rows, total)
        )


def assert_equal_replica_batches(batch):
    """Fails the step when the replicas received different batch sizes."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return
    if isinstance(tf.distribute.get_strategy(), tf.distribute.TPUStrategy):
        return  # TPU batches are static; XLA on TPU has no runtime assertions
    replicas = context.num_replicas_in_sync
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(batch, tf.float32))
    tf.debugging.assert_equal(
        tf.cast(batch * replicas, tf.float32),
        total,
        message=(
            "The replicas received different batch sizes: the global batch does not "
            f"divide across the {replicas} replicas. Batch the dataset with "
            "drop_remainder=True and a global batch size that is a multiple of "
            f"{replicas} (see kclr.distribute.check_global_batch_size)."
        ),
    )


def check_batch(global_batch_size, strategy, chunk_size=None, num_examples=None, source=None):
    """The batch rules of a run, in one place: the global batch divides across the replicas
    of `strategy` (and fits the data when `num_examples` is given), and the per-replica
    batch into gradient-cache chunks of `chunk_size`. Returns the per-replica batch;
    raises a clear error otherwise."""
    from kclr.distribute import check_global_batch_size

    per_replica = check_global_batch_size(
        global_batch_size, strategy, num_examples=num_examples, source=source
    )
    if chunk_size is not None:
        num_chunks(per_replica, chunk_size)
    return per_replica


def static_batch(data) -> int | None:
    """The static batch of a `tf.data.Dataset`'s views (None: not a dataset, or unknown)."""
    if not isinstance(data, tf.data.Dataset):
        return None
    spec = data.element_spec
    if isinstance(spec, dict):
        spec = spec.get("views")
    elif isinstance(spec, (tuple, list)):
        spec = spec[0] if spec else None
    shape = getattr(spec, "shape", None)
    if shape is None or shape.rank is None or shape.rank == 0 or shape[0] is None:
        return None
    return int(shape[0])


def global_rows(local_batch, num_views, start=0, count=None):
    """Rows in the global view-major `[V*N]` batch of this replica's samples
    `[start, start + count)` (all of them by default), every view; and `V*N`.

    Replica `r` holds samples `r*B .. r*B+B-1` of every view (`B = local_batch`).
    """
    replicas, replica = replica_info()
    count = local_batch if count is None else count
    global_batch = local_batch * replicas
    sample = replica * local_batch + start + tf.range(count)
    rows = tf.range(num_views)[:, None] * global_batch + sample[None, :]
    return tf.reshape(rows, [-1]), num_views * global_batch


def num_chunks(batch: int | None, chunk_size: int) -> int:
    """Returns the number of gradient-cache chunks of a local batch, or raises a clear error."""
    if batch is None:
        raise ValueError(
            "Gradient caching needs a static batch size, but the batch dimension is unknown. "
            "Batch the dataset with `drop_remainder=True` (kclr.data.pretraining_dataset does)."
        )
    if batch % chunk_size:
        divisor = max(d for d in range(1, min(batch, chunk_size) + 1) if batch % d == 0)
        raise ValueError(
            f"Gradient caching splits the local batch into chunks of {chunk_size} images, but "
            f"received a local batch of {batch} images, which is not a multiple of it. Use a "
            f"`gradient_cache_chunk_size` that divides the per-replica batch (e.g. "
            f"{divisor}) or change the batch size."
        )
    return batch // chunk_size


def image_shape(views):
    """The static shape `(H, W, C)` of one image of views `[B, V, H, W, C]` or images
    `[B, H, W, C]`, or `None` when it is not fully known."""
    shape = views.shape[-3:]
    return tuple(int(d) for d in shape) if shape.is_fully_defined() else None
