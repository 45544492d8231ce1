"""From a data element to the view-major image batch of a train step, on the device.

`ContrastiveTrainer` takes `{"views": [B, V, H, W, C], "labels": [B]}` (or a tuple, or
raw images with a device augmenter) and runs every view through the encoder as one
view-major batch `[V*B, H, W, C]`, as the official code does. This mixin holds that
preparation: unpacking, the view-major reshape, the photometric stage applied on the
device once per step (`_augment_on_device`, also called once before chunking by
gradient caching), and the checks that a batch divides across the replicas and chunks.
"""

from __future__ import annotations

import tensorflow as tf

from kclr.augment.base import RNG_ALG, AugmentationLayer, device_batch
from kclr.losses.core import replica_info


class ViewBatches:
    """Batch preparation of `ContrastiveTrainer` (a mixin; needs `device_augmenter`,
    `num_views`, `augment_seed` and `optimizer` on the model)."""

    def _unpack(self, data):
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

    def _views_to_batch(self, views, training):
        """Returns view-major images `[V*B, H, W, C]`, the view count and the batch."""
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
            num_views = self._num_views_of(views)
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
            return self._augment_on_device(images, num_views), num_views, batch
        if images.dtype.is_integer:
            images = tf.image.convert_image_dtype(images, tf.float32)
        augmenter = self.device_augmenter
        if augmenter is not None and not augmenter.built:
            # Built, not applied (evaluation does not augment): otherwise Keras warns
            # of unbuilt state when the trainer is first called outside training.
            augmenter(images[:1], training=False)
        return images, num_views, batch

    @staticmethod
    def _num_views_of(views):
        """`V` of views `[B, V, H, W, C]`, or a clear error."""
        num_views = views.shape[1]
        if num_views is None or num_views < 2:
            raise ValueError(
                f"Contrastive training needs at least 2 views; received views of shape {views.shape}."
            )
        return num_views

    def _augment_on_device(self, images, num_views):
        """Applies `device_augmenter` to the local batch of views, once per step.

        Args:
            images: view-major `[V*B, H, W, C]` local images, uint8 or float.
            num_views: `V`.

        Returns:
            float32 `[V*B, H', W', C]` images (uint8 input scaled to `[0, 1]`).

        Per-image random parameters come from the stateless seed
        `(augment_seed, optimizer.iterations)`; each replica draws them for the
        global batch `[V*N]` (view-major, replica `r` holding samples
        `r*B .. r*B+B-1` of every view) and keeps its rows, so a step on R replicas
        augments exactly as one step on a single device.
        """
        if not self._augments_by_rows():
            if images.dtype.is_integer:
                images = tf.image.convert_image_dtype(images, tf.float32)
            return self.device_augmenter(images, training=True)
        if replica_info()[0] == 1:
            return self._augment_rows(images, None, None)  # the rows are the batch
        return self._augment_rows(images, *global_rows(tf.shape(images)[0] // num_views, num_views))

    def _augments_by_rows(self):
        """True when the device stage can run on any part of the batch: nothing to
        augment, or a kclr augmentation layer (per-image draws, see `_augment_rows`)."""
        return isinstance(self.device_augmenter, AugmentationLayer | None)

    def _augment_rows(self, images, rows, total):
        """The photometric stage on rows `rows` of the global view-major batch of
        `total` images (`rows=None`: all of it); float32 images out.

        Per-image draws depend only on the seed and the row, so any split of the batch
        (replicas, gradient-cache chunks) augments exactly as the whole batch at once.
        """
        if self.device_augmenter is None:
            if images.dtype.is_integer:
                images = tf.image.convert_image_dtype(images, tf.float32)
            return images
        step = tf.constant(0, tf.int64)
        if self.optimizer is not None:
            step = tf.cast(self.optimizer.iterations, tf.int64)
        seed = tf.random.experimental.stateless_fold_in(
            tf.constant([self.augment_seed, 0], tf.int64), step, alg=RNG_ALG
        )
        with device_batch(rows, total):
            return self.device_augmenter(images, training=True, seed=seed)

    def _assert_equal_replica_batches(self, batch):
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

    def _check_dataset_batch(self, data):
        """Raises a clear error when a dataset's static batch does not divide across replicas."""
        if not isinstance(data, tf.data.Dataset):
            return
        spec = data.element_spec
        if isinstance(spec, dict):
            spec = spec.get("views")
        elif isinstance(spec, (tuple, list)):
            spec = spec[0] if spec else None
        shape = getattr(spec, "shape", None)
        if shape is None or shape.rank is None or shape.rank == 0 or shape[0] is None:
            return
        from kclr.distribute import check_global_batch_size

        per_replica = check_global_batch_size(int(shape[0]), self.distribute_strategy)
        if self.gradient_cache_chunk_size is not None:
            from kclr.trainer.gradient_cache import num_chunks

            num_chunks(per_replica, self.gradient_cache_chunk_size)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras builds from the first batch of a distributed iterator by
        # `strategy.reduce("MEAN", batch)`, which fails for dict batches with
        # integer labels under MultiWorkerMirroredStrategy; build from the first
        # replica's local batch instead.
        if iterator is not None and data_batch is None:
            strategy = self.distribute_strategy
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tf.nest.map_structure(
                    lambda x: (
                        strategy.experimental_local_results(x)[0]
                        if isinstance(x, tf.distribute.DistributedValues)
                        else x
                    ),
                    batch,
                )
                break
        return super()._maybe_symbolic_build(data_batch=data_batch)


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
