"""photometric="host" | "device": the same recipe gives the same distribution of views."""

import numpy as np
import pytest
import tensorflow as tf

import kclr
import kclr.data as D


def _colour_blocks(n=256, size=16, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 4, 4, 3)).astype("float32")
    images = tf.image.resize(coarse, [size, size], "nearest").numpy()
    return (images * 255).astype(np.uint8), np.arange(n) % 4


def _device_trainer(recipe, size, **overrides):
    trainer = kclr.ContrastiveTrainer(
        kclr.models.ResNet(18, 0.125, input_shape=(size, size, 3)),
        kclr.models.ProjectionHead("v1", output_dim=4),
        device_augmenter=D.photometric_stage(recipe, size, **overrides),
        augment_seed=7,
    )
    trainer.compile(optimizer="sgd", loss="ntxent")
    return trainer


def _statistics(views):
    """Summary statistics of views [n, 2, S, S, 3] in [0, 1]."""
    flat = views.reshape(-1, *views.shape[2:])
    per_view_mean = flat.mean(axis=(1, 2, 3))
    chroma = (flat.max(-1) - flat.min(-1)).mean(axis=(1, 2))
    return {
        "channel_mean": flat.mean(axis=(0, 1, 2)),
        "pixel_std": flat.std(),
        "view_mean_std": per_view_mean.std(),
        "grayscale_fraction": np.mean(chroma < 1e-6),
        "chroma_quartiles": np.quantile(chroma, [0.25, 0.5, 0.75]),
        "view_difference": np.abs(views[:, 0] - views[:, 1]).mean(),
    }


def test_host_and_device_paths_give_the_same_view_statistics():
    source = _colour_blocks()
    options = dict(recipe="simclr_cifar", image_size=16, global_batch_size=128, seed=1)
    host = D.pretraining_dataset(source, photometric="host", **options)
    host_views = np.concatenate([b["views"].numpy() for b in host.take(8)])
    device = D.pretraining_dataset(source, photometric="device", **options)
    trainer = _device_trainer("simclr_cifar", 16)
    device_views = []
    for step, batch in enumerate(device.take(8)):
        views = batch["views"]
        assert views.dtype == tf.uint8
        trainer.optimizer.iterations.assign(step)
        flat = tf.concat([views[:, 0], views[:, 1]], axis=0)  # view-major, as train_step
        out = trainer._augment_on_device(flat, 2).numpy()
        device_views.append(np.stack([out[:128], out[128:]], axis=1))
    device_views = np.concatenate(device_views)
    assert host_views.shape == device_views.shape == (1024, 2, 16, 16, 3)
    host_stats, device_stats = _statistics(host_views), _statistics(device_views)
    # The statistics differ by sampling noise only (2,048 views each).
    np.testing.assert_allclose(device_stats["channel_mean"], host_stats["channel_mean"], atol=0.012)
    assert device_stats["pixel_std"] == pytest.approx(host_stats["pixel_std"], abs=0.008)
    assert device_stats["view_mean_std"] == pytest.approx(host_stats["view_mean_std"], abs=0.012)
    assert device_stats["grayscale_fraction"] == pytest.approx(0.2, abs=0.03)
    assert host_stats["grayscale_fraction"] == pytest.approx(0.2, abs=0.03)
    np.testing.assert_allclose(
        device_stats["chroma_quartiles"], host_stats["chroma_quartiles"], atol=0.02
    )
    assert device_stats["view_difference"] == pytest.approx(host_stats["view_difference"], abs=0.01)
    # Without the device stage the views would be far from the host ones.
    raw = np.concatenate([b["views"].numpy() / 255.0 for b in device.take(2)])
    assert _statistics(raw)["grayscale_fraction"] < 0.01


@pytest.mark.parametrize("kind", ["arrays", "folder"])
def test_device_views_are_the_host_geometric_stage_in_uint8(kind, image_folder):
    # A recipe without photometric steps: the device path's uint8 views are the host
    # path's float views rounded (same crops and flips, same seeds).
    source = _colour_blocks(32) if kind == "arrays" else str(image_folder)
    options = dict(recipe="finetune", image_size=12, global_batch_size=4, seed=2)
    options["deterministic"] = True
    host = next(iter(D.pretraining_dataset(source, photometric="host", **options)))["views"]
    device = next(iter(D.pretraining_dataset(source, photometric="device", **options)))["views"]
    assert host.dtype == tf.float32 and device.dtype == tf.uint8
    expected = np.clip(host.numpy(), 0.0, 1.0) * 255.0
    np.testing.assert_allclose(device.numpy().astype(np.float32), expected, atol=0.5 + 1e-3)
    assert np.abs(device.numpy()[:, 0].astype(float) - device.numpy()[:, 1]).mean() > 1.0


def test_photometric_option_is_checked_and_auto_is_host_on_cpu():
    assert D.resolve_photometric("auto") == "host"  # the test machine has no accelerator
    assert D.resolve_photometric("device") == "device"
    with pytest.raises(ValueError, match="photometric must be one of .* received 'gpu'"):
        D.pretraining_dataset(_colour_blocks(8), image_size=16, global_batch_size=4,
                              photometric="gpu")  # fmt: skip
    stage = D.photometric_stage("simclr", 32, blur=False)
    assert [type(s).__name__ for s in stage.steps] == ["ColorDistortion", "RandomGrayscale"]
