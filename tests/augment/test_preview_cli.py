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


def test_preview_takes_a_recipe_spec(tmp_path):
    """`--recipe` takes a JSON spec: its config reaches the recipe (strength 0 = crop only)."""
    gray = np.full((24, 24, 3), 100, np.uint8)
    source = tmp_path / "gray.png"
    tf.io.write_file(str(source), tf.io.encode_png(gray))
    out = tmp_path / "grid.png"
    spec = '{"name": "simclr", "config": {"color_jitter_strength": 0, "blur": false}}'
    args = ["preview", str(source), "--recipe", spec, "--views", "3", "--image-size", "8"]
    result = CliRunner().invoke(command, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Wrote 3 simclr views" in result.output
    grid = tf.io.decode_png(tf.io.read_file(str(out))).numpy()
    # Crop and flip of a uniform gray image leave it gray: every tile is 100 (+-1).
    tiles = [grid[4 + r * 12 : 4 + r * 12 + 8, 4 + c * 12 : 4 + c * 12 + 8] for r in (0, 1)
             for c in (0, 1)]  # fmt: skip
    for tile in tiles:
        assert np.abs(tile.astype(int) - 100).max() <= 1


def test_preview_refuses_a_bad_recipe_spec(tmp_path):
    source = tmp_path / "gray.png"
    tf.io.write_file(str(source), tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)))
    out = tmp_path / "grid.png"
    typo = '{"name": "simclr", "config": {"blurr": false}}'
    result = CliRunner().invoke(command, ["preview", str(source), "--recipe", typo,
                                          "--out", str(out)])  # fmt: skip
    assert result.exit_code == 2
    assert "Unknown argument `recipe.config.blurr` for recipe 'simclr'" in result.output
    assert "Did you mean 'recipe.config.blur'?" in result.output
    bad_json = CliRunner().invoke(command, ["preview", str(source), "--recipe", "{name: simclr}",
                                            "--out", str(out)])  # fmt: skip
    assert bad_json.exit_code == 2 and "is not valid JSON" in bad_json.output
    assert not out.exists()


def test_preview_alternates_the_views_of_an_asymmetric_recipe(tmp_path):
    """`byol` tiles alternate view 1, view 2: with solarize p=1 on view 2 only, a uniform
    200 image stays 200 in views 1 and 3 and becomes 55 in view 2."""
    source = tmp_path / "bright.png"
    tf.io.write_file(str(source), tf.io.encode_png(np.full((24, 24, 3), 200, np.uint8)))
    out = tmp_path / "grid.png"
    spec = ('{"name": "byol", "config": {"color_jitter_strength": 0, "brightness": 0, '
            '"contrast": 0, "saturation": 0, "hue": 0, "blur_probabilities": [0, 0], '
            '"solarize_probabilities": [0, 1]}}')  # fmt: skip
    args = ["preview", str(source), "--recipe", spec, "--views", "3", "--image-size", "8"]
    result = CliRunner().invoke(command, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    grid = tf.io.decode_png(tf.io.read_file(str(out))).numpy().astype(int)
    tile = [grid[4 + r * 12 : 4 + r * 12 + 8, 4 + c * 12 : 4 + c * 12 + 8] for r in (0, 1)
            for c in (0, 1)]  # fmt: skip
    assert [round(float(t.mean())) for t in tile] == [200, 200, 55, 200]
