"""benchmarks/gpu_train.py runs end to end on CPU at tiny sizes (ready for an accelerator)."""

import pathlib
import sys

import keras

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import gpu_train  # noqa: E402


def test_flop_count_matches_the_published_resnet_figures():
    import kclr

    encoder = kclr.models.ResNet(18, 1, cifar_stem=True, input_shape=(32, 32, 3))
    # ResNet-18 with the CIFAR stem: 0.56 G multiply-adds per 32 px image.
    assert abs(gpu_train.model_flops(encoder) / 2e9 - 0.5596) < 1e-3


def test_gpu_train_smoke_on_cpu(tmp_path):
    report = gpu_train.main(
        [
            "--depth", "18", "--width", "0.125", "--image-size", "16", "--batch", "4",
            "--steps", "1", "--warmup", "1", "--precision", "float32", "--xla", "off",
            "--num-images", "8", "--peak-tflops", "1.0",
        ]
    )  # fmt: skip
    keras.config.set_dtype_policy("float32")
    assert report["global_batch"] == 4 and report["photometric"] == "device"
    flops = report["flops"]
    assert flops["train_per_sample"] == 6 * flops["forward_per_view"] > 0
    for name in ("synthetic", "real"):
        result = report["results"][name]
        assert result["images_per_s"] > 0 and result["step_seconds"] > 0
        expected = flops["train_per_sample"] * 4 / result["step_seconds"] / 1e12
        assert abs(result["mfu"] - expected) < 1e-3  # peak 1 TFLOP/s: MFU = achieved TFLOP/s
    ratio = (
        report["results"]["real"]["images_per_s"] / report["results"]["synthetic"]["images_per_s"]
    )
    assert abs(report["real_over_synthetic"] - ratio) < 1e-2
    assert report["input_bound"] == (report["real_over_synthetic"] < 0.9)
