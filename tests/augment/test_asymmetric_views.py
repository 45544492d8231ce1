"""Asymmetric views (one recipe per view, BYOL's pair): the `byol` recipe, `PerView`, and
the data pipeline's three places for a photometric stage (per file, arrays, device)."""

import numpy as np
import pytest
import tensorflow as tf

import kclr.augment as A
from kclr import data as kdata
from kclr import registry
from kclr.augment.base import DeviceBatch, fold

# Crop the whole image and never flip: both views see the same pixels before their
# photometric stage, so view 2 must be exactly view 1 solarized.
SAME_GEOMETRY = dict(
    area_range=(1.0, 1.0), aspect_ratio_range=(1.0, 1.0), flip_probability=0.0,
    color_jitter_strength=0.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0,
    blur_probabilities=(0.0, 0.0), solarize_probabilities=(0.0, 1.0),
)  # fmt: skip


def _solarized(x):
    return np.where(x >= 0.5, 1.0 - x, x)


def test_byol_builds_the_authors_pair():
    views = registry.recipes.get("byol", image_size=24)
    assert isinstance(views, A.MultiView) and views.views == 2
    first, second = views.augmenters
    blur1 = [s for s in first.steps if isinstance(s, A.RandomGaussianBlur)]
    blur2 = [s for s in second.steps if isinstance(s, A.RandomGaussianBlur)]
    assert [b.probability for b in blur1 + blur2] == [1.0, 0.1]
    assert not [s for s in first.steps if isinstance(s, A.RandomSolarize)]
    (solarize,) = [s for s in second.steps if isinstance(s, A.RandomSolarize)]
    assert (solarize.probability, solarize.threshold) == (0.2, 0.5)
    jitter = [s for s in first.steps if isinstance(s, A.ColorDistortion)][0]
    assert (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue) == (
        0.4,
        0.4,
        0.2,
        0.1,
    )
    geometric, photometric = A.split_stages(views)
    assert [type(s).__name__ for s in geometric] == ["RandomResizedCrop", "RandomFlip"]
    assert [type(s).__name__ for s in photometric] == ["PerView"]
    assert [[type(s).__name__ for s in stage.steps] for stage in photometric[0].stages] == [
        ["ColorDistortion", "RandomGrayscale", "RandomGaussianBlur"],
        ["ColorDistortion", "RandomGrayscale", "RandomGaussianBlur", "RandomSolarize"],
    ]


def test_byol_refuses_what_it_sets_per_view():
    with pytest.raises(ValueError, match="set per view by `blur_probabilities`"):
        registry.recipes.get("byol", image_size=24, blur_probability=0.5)
    with pytest.raises(ValueError, match="one probability per view"):
        registry.recipes.get("byol", image_size=24, solarize_probabilities=[0.0, 0.2, 0.1])


def test_views_that_crop_differently_are_refused():
    views = A.MultiView([A.recipes.simclr(16), A.recipes.simclr(16, area_range=(0.5, 1.0))])
    with pytest.raises(ValueError, match="view 2's crop and flip differ from view 1's"):
        A.split_stages(views)


def test_per_view_applies_each_stage_to_its_block_of_rows():
    stages = [A.RandomGaussianNoise(probability=1.0), A.RandomSolarize(probability=0.5)]
    layer = A.PerView(stages)
    images = tf.random.stateless_uniform([2 * 6, 8, 8, 3], [1, 2])
    seed = tf.constant([3, 4], tf.int64)
    got = layer(images, training=True, seed=seed).numpy()
    want = [stage(images[6 * v : 6 * v + 6], training=True, seed=fold(seed, v + 1))
            for v, stage in enumerate(stages)]  # fmt: skip
    np.testing.assert_array_equal(got, np.concatenate(want))
    assert not np.array_equal(got[:6], images[:6])  # noise moved every view-1 image


def test_per_view_on_replicas_draws_as_the_whole_batch():
    """Two replicas, each with its view-major local batch, get the rows a single device
    gets for those images (`DeviceBatch`)."""
    layer = A.PerView([A.RandomGaussianNoise(probability=0.7), A.RandomSolarize(probability=0.5)])
    n, b = 8, 4  # global batch, per replica
    images = tf.random.stateless_uniform([2 * n, 8, 8, 3], [5, 6])  # view-major, global
    seed = tf.constant([7, 8], tf.int64)
    whole = layer(images, training=True, seed=seed, device=DeviceBatch()).numpy()
    for replica in range(2):
        rows = np.concatenate([v * n + replica * b + np.arange(b) for v in range(2)])
        local = tf.gather(images, rows)
        part = layer(local, training=True, seed=seed, device=DeviceBatch(tf.constant(rows), 2 * n))
        np.testing.assert_allclose(part.numpy(), whole[rows], atol=1e-6)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("asymmetric")
    rng = np.random.default_rng(0)
    for i in range(4):
        image = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
        tf.io.write_file(str(root / f"{i}.png"), tf.io.encode_png(image))
    return root, rng


@pytest.mark.parametrize("where", ["files", "arrays", "device"])
def test_the_pipeline_gives_each_view_its_own_stage(folder, where):
    root, _ = folder
    if where == "arrays":
        images = np.stack([tf.io.decode_png(tf.io.read_file(str(p))).numpy()
                           for p in sorted(root.glob("*.png"))])  # fmt: skip
        source = (images, np.zeros(len(images), np.int32))
    else:
        source = str(root)
    dataset = kdata.pretraining_dataset(
        source, recipe="byol", image_size=16, views=2, global_batch_size=4, seed=0,
        shuffle=False, repeat=False, photometric="device" if where == "device" else "host",
        **SAME_GEOMETRY,
    )  # fmt: skip
    views = next(iter(dataset))["views"]
    if where == "device":
        assert views.dtype == tf.uint8
        stage = kdata.photometric_stage("byol", 16, **SAME_GEOMETRY)
        major = tf.reshape(tf.transpose(views, [1, 0, 2, 3, 4]), [8, 16, 16, 3])
        out = stage(major, training=True, seed=tf.constant([0, 1], tf.int64), device=DeviceBatch())
        views = tf.transpose(tf.reshape(out, [2, 4, 16, 16, 3]), [1, 0, 2, 3, 4])
    views = views.numpy()
    assert views.shape == (4, 2, 16, 16, 3)
    np.testing.assert_allclose(views[:, 1], _solarized(views[:, 0]), atol=1e-6)
    assert not np.allclose(views[:, 0], views[:, 1])


def test_the_recipe_fixes_the_number_of_views(folder):
    root, _ = folder
    with pytest.raises(ValueError, match=r"makes 2 views .* Set `data.views`"):
        kdata.pretraining_dataset(str(root), recipe="byol", image_size=16, views=3,
                                  global_batch_size=4)  # fmt: skip


def test_kclr_fit_refuses_other_views_before_writing_anything(tmp_path):
    from kclr.run import config
    from kclr.run import fit as runs

    cfg = config.resolve("tiny", overrides=["augmentation.name=byol", "data.views=3"])
    with pytest.raises(ValueError, match=r"makes 2 views .* Set `data.views`"):
        runs.fit(cfg, out=tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()
