"""pretraining_dataset / labelled_dataset: structure, values, determinism, sharding."""

import numpy as np
import pytest
import tensorflow as tf

import kclr.augment as A
import kclr.data as D

from .conftest import write_tfrecords


def _flip():
    """A cheap augmenter for tests about structure, not augmentation: tracing the full
    SimCLR recipe costs ~7 s per pipeline on a CPU."""
    return A.AugmentationPipeline([A.RandomFlip()])


def _arrays(n=32, size=16, classes=4):
    rng = np.random.default_rng(0)
    return (rng.random((n, size, size, 3)) * 255).astype(np.uint8), np.arange(n) % classes


def test_array_pipeline_structure_and_range():
    dataset = D.pretraining_dataset(
        _arrays(), recipe="simclr_cifar", image_size=16, global_batch_size=8, seed=0
    )
    spec = dataset.element_spec
    assert spec["views"].shape == (8, 2, 16, 16, 3) and spec["views"].dtype == tf.float32
    assert spec["labels"].shape == (8,) and spec["labels"].dtype == tf.int32
    batches = list(dataset.take(6))  # repeats past the 32 examples (4 batches)
    views = batches[0]["views"].numpy()
    assert views.min() >= 0.0 and views.max() <= 1.0
    assert not np.allclose(views[:, 0], views[:, 1])  # two independent views


def test_unlabelled_source_has_no_labels_key():
    images, _ = _arrays()
    dataset = D.pretraining_dataset(
        images, recipe=_flip(), image_size=16, global_batch_size=4, seed=0
    )
    assert set(next(iter(dataset))) == {"views"}


@pytest.mark.slow  # the folder test below checks seeded reproducibility by default
def test_seeded_deterministic_runs_are_identical():
    def first_two(seed):
        dataset = D.pretraining_dataset(
            _arrays(), recipe="simclr", image_size=16, global_batch_size=8, seed=seed,
            deterministic=True,
        )  # fmt: skip
        return [b["views"].numpy() for b in dataset.take(2)]

    a, b = first_two(1), first_two(1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])


def test_no_repeat_no_shuffle_drops_remainder():
    dataset = D.pretraining_dataset(
        _arrays(30), recipe=_flip(), image_size=16, global_batch_size=8, shuffle=False,
        repeat=False, seed=0,
    )  # fmt: skip
    batches = list(dataset)
    assert len(batches) == 3
    np.testing.assert_array_equal(batches[0]["labels"].numpy(), np.arange(8) % 4)


def test_folder_pipeline_mixed_formats(image_folder):
    dataset = D.pretraining_dataset(
        str(image_folder), recipe="simclr", image_size=24, views=3, global_batch_size=4,
        seed=0, deterministic=True,
    )  # fmt: skip
    batches = list(dataset.take(4))  # 16 images of 12 files: every format decodes
    views = np.concatenate([b["views"].numpy() for b in batches])
    assert views.shape == (16, 3, 24, 24, 3)
    assert views.min() >= 0.0 and views.max() <= 1.0
    labels = np.concatenate([b["labels"].numpy() for b in batches])
    assert set(labels) <= {0, 1}
    # Every file (CMYK / grayscale JPEG, RGBA / grayscale PNG included) decodes: none is
    # dropped by the pipeline's error skipping.
    names = [
        n.decode().split("/")[-1]
        for _, _, batch_names in D.labelled_dataset(
            str(image_folder), image_size=8, batch_size=16, with_filenames=True
        )
        for n in batch_names.numpy()
    ]
    assert len(names) == 12 and {"cmyk.jpg", "gray.jpg", "gray.png", "rgba.png"} <= set(names)


def test_folder_pipeline_is_reproducible_with_seed(image_folder):
    def run(seed=3):
        dataset = D.pretraining_dataset(
            str(image_folder), image_size=16, global_batch_size=4, seed=seed, deterministic=True
        )
        return next(iter(dataset))["views"].numpy()

    first = run()
    np.testing.assert_array_equal(first, run())
    assert not np.array_equal(first, run(seed=4))


def test_eval_crop_from_files_matches_official_centre_crop(tmp_path):
    image = (np.random.default_rng(0).random((64, 80, 3)) * 255).astype(np.uint8)
    tf.io.write_file(str(tmp_path / "a.png"), tf.io.encode_png(image))
    images, labels, names = next(
        iter(D.labelled_dataset(str(tmp_path), image_size=40, batch_size=1, with_filenames=True))
    )
    # crop_proportion 0.875 of the shorter side: 56x56 at ((64-56+1)//2, (80-56+1)//2).
    crop = tf.image.convert_image_dtype(image[4:60, 12:68], tf.float32)
    ref = tf.clip_by_value(tf.image.resize(crop, [40, 40], "bicubic"), 0.0, 1.0)
    np.testing.assert_allclose(images[0].numpy(), ref.numpy(), atol=1e-5)
    assert labels.numpy().tolist() == [-1] and names.numpy()[0].decode().endswith("a.png")


def test_labelled_dataset_is_finite_and_ordered():
    images, labels = _arrays(10)
    dataset = D.labelled_dataset((images, labels), image_size=16, batch_size=4)
    batches = list(dataset)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), labels)
    first = batches[0][0].numpy()
    expected = tf.image.resize(images[:4] / 255.0, [16, 16], "bicubic").numpy()
    np.testing.assert_allclose(first, np.clip(expected, 0, 1), atol=1e-5)


def test_tfrecord_pipeline(tmp_path):
    write_tfrecords(tmp_path, "train", 2, 5, np.random.default_rng(0))
    dataset = D.pretraining_dataset(str(tmp_path), image_size=16, global_batch_size=4, seed=0)
    batch = next(iter(dataset))
    assert batch["views"].shape == (4, 2, 16, 16, 3)
    assert set(batch["labels"].numpy()) <= {0, 1, 2}
    listing = tmp_path / "subset.txt"
    listing.write_text("n00001_01.JPEG\nn00002_02.JPEG\n")
    test = D.labelled_dataset(
        str(tmp_path), "train", 16, 8, subset_file=listing, with_filenames=True
    )
    names = sorted(n.decode() for b in test for n in b[2].numpy())
    assert names == ["n00001_01.JPEG", "n00002_02.JPEG"]


def test_mirrored_strategy_per_replica_batches():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    dataset = D.pretraining_dataset(_arrays(), recipe=_flip(), image_size=16,
                                    global_batch_size=8, seed=0, strategy=strategy)  # fmt: skip
    batch = next(iter(dataset))
    per_replica = strategy.experimental_local_results(batch["views"])
    assert [tuple(v.shape) for v in per_replica] == [(4, 2, 16, 16, 3)] * 2
    with pytest.raises(ValueError, match="global_batch_size=9 does not divide across 2"):
        D.pretraining_dataset(_arrays(), global_batch_size=9, strategy=strategy)


def test_custom_augmenter_and_bad_recipe(image_folder):
    augmenter = A.AugmentationPipeline([A.RandomFlip(), A.RandomGrayscale(1.0)])
    batch = next(
        iter(
            D.pretraining_dataset(
                str(image_folder), recipe=augmenter, image_size=12, global_batch_size=2, seed=0
            )
        )  # fmt: skip
    )
    views = batch["views"].numpy()
    np.testing.assert_allclose(views[..., 0], views[..., 1], atol=1e-6)
    with pytest.raises(
        ValueError, match=r"Unknown recipe `recipe.name='simclrr'`. Did you mean 'simclr'\?"
    ):
        D.pretraining_dataset("demo", recipe="simclrr")
    with pytest.raises(
        ValueError, match=r"Unknown argument `recipe.config.colour` for recipe 'simclr'"
    ):
        D.pretraining_dataset("demo", colour=0.5)


def test_demo_pretraining_dataset():
    from kclr.data import demo

    dataset = D.pretraining_dataset(
        "demo", recipe=_flip(), image_size=demo.IMAGE_SIZE, global_batch_size=16, seed=0
    )
    batch = next(iter(dataset))
    assert batch["views"].shape == (16, 2, demo.IMAGE_SIZE, demo.IMAGE_SIZE, 3)
    assert int(tf.reduce_max(batch["labels"])) < demo.NUM_CLASSES


def test_tfds_source_with_mocked_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=8):
        dataset = D.pretraining_dataset(
            "tfds:cifar10", recipe=_flip(), image_size=16, global_batch_size=4, seed=0
        )
        batch = next(iter(dataset))
    assert batch["views"].shape == (4, 2, 16, 16, 3)
    assert batch["labels"].dtype == tf.int32


@pytest.mark.parametrize("encode", [tf.io.encode_png, tf.io.encode_jpeg], ids=["png", "jpeg"])
def test_decode_crops_resize_of_each_crop_with_flips(encode):
    from kclr.data import decode

    image = (np.random.default_rng(1).random((40, 50, 3)) * 255).astype(np.uint8)
    data = encode(image)
    pixels = tf.image.convert_image_dtype(tf.io.decode_image(data, channels=3), tf.float32)
    boxes = tf.constant([[2, 3, 20, 30], [0, 0, 40, 50]])
    out = decode.decode_crops(
        data, lambda h, w: boxes, (16, 16), "bicubic", flips=tf.constant([True, False])
    ).numpy()
    # The official order: convert to float, crop, bicubic resize, then flip.
    ref0 = tf.image.resize(pixels[2:22, 3:33], [16, 16], "bicubic").numpy()[:, ::-1]
    ref1 = tf.image.resize(pixels, [16, 16], "bicubic").numpy()
    np.testing.assert_allclose(out[0], ref0, atol=1e-5)
    np.testing.assert_allclose(out[1], ref1, atol=1e-5)


@pytest.mark.parametrize("kind", [pytest.param("arrays", marks=pytest.mark.slow), "folder"])
def test_start_step_continues_the_uninterrupted_stream(kind, image_folder):
    # Resuming a run starts the pipeline at a global step: the batches must equal those
    # an uninterrupted stream yields there, inside the second (reshuffled) pass.
    if kind == "arrays":
        source, batch, per_pass = _arrays(n=32), 8, 4  # 32 arrays / 8
    else:
        source, batch, per_pass = str(image_folder), 4, 3  # 12 files / 4
    options = dict(recipe="simclr_cifar", image_size=16, global_batch_size=batch, seed=3)
    options["deterministic"] = True
    whole = [b["views"].numpy() for b in D.pretraining_dataset(source, **options).take(7)]
    start = per_pass + 1
    resumed = D.pretraining_dataset(source, start_step=start, **options).take(7 - start)
    resumed = [b["views"].numpy() for b in resumed]
    assert len(resumed) == 7 - start
    for a, b in zip(whole[start:], resumed, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(resumed[0], whole[0])  # really started later


def test_negative_start_step_is_refused():
    with pytest.raises(ValueError, match="start_step must be >= 0"):
        D.pretraining_dataset(_arrays(), image_size=16, global_batch_size=8, start_step=-1)
