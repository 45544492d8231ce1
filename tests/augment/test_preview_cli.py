"""`kclr augment preview` writes a PNG grid and refuses to clobber files."""

import numpy as np
import tensorflow as tf
from click.testing import CliRunner

from kclr.cli.augment import command


def test_preview_writes_grid(tmp_path):
    image = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    source = tmp_path / "in.jpg"
    tf.io.write_file(str(source), tf.io.encode_jpeg(image))
    out = tmp_path / "grid.png"
    args = ["preview", str(source), "--recipe", "simclr_cifar", "--views", "3"]
    args += ["--image-size", "16", "--out", str(out)]
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    grid = tf.io.decode_png(tf.io.read_file(str(out))).numpy()
    # 4 tiles (original + 3 views) in a 2x2 grid of 16 px tiles with 4 px padding.
    assert grid.shape == (2 * 20 + 4, 2 * 20 + 4, 3)
    before = out.read_bytes()
    again = CliRunner().invoke(command, args)
    assert again.exit_code != 0 and "already exists" in again.output
    assert out.read_bytes() == before


def test_preview_rejects_non_image(tmp_path):
    source = tmp_path / "notes.txt"
    source.write_text("hello")
    result = CliRunner().invoke(command, ["preview", str(source), "--out", str(tmp_path / "g.png")])
    assert result.exit_code != 0 and "Could not decode" in result.output
    assert not (tmp_path / "g.png").exists()
