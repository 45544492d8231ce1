"""`kclr.evaluation.neighbours` and `kclr eval neighbours`: neighbours, PCA, the PNGs, the CLI."""

from __future__ import annotations

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest
from click.testing import CliRunner

from kclr.cli import main
from kclr.evaluation import neighbours as nb


def _brute_force(features, queries, k):
    """Cosine neighbours one query at a time, with plain loops and sorting."""
    indices, sims = [], []
    for q in queries:
        scored = []
        for j in range(len(features)):
            if j != q:
                a, b = features[q], features[j]
                scored.append((float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)), j))
        scored.sort(key=lambda item: -item[0])
        indices.append([j for _, j in scored[:k]])
        sims.append([s for s, _ in scored[:k]])
    return np.array(indices), np.array(sims)


def test_nearest_neighbours_match_a_brute_force_reference():
    features = np.random.default_rng(0).normal(size=(60, 8)) * np.linspace(0.1, 3, 60)[:, None]
    queries = [0, 7, 59, 7]
    indices, sims = nb.nearest_neighbours(features, queries, k=6)
    ref_indices, ref_sims = _brute_force(features, queries, 6)
    np.testing.assert_array_equal(indices, ref_indices)
    np.testing.assert_allclose(sims, ref_sims, atol=1e-6)
    assert indices.shape == sims.shape == (4, 6) and sims.dtype == np.float32
    assert not (indices == np.array(queries)[:, None]).any()  # never the query itself
    assert (np.diff(sims, axis=1) <= 0).all()


def test_nearest_neighbours_exclude_self_even_among_duplicates_and_check_k():
    features = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    indices, sims = nb.nearest_neighbours(features, [0], k=3)
    assert indices[0].tolist() == [1, 2, 3] or indices[0].tolist() == [1, 3, 2]
    np.testing.assert_allclose(sims[0], [1.0, 0.0, 0.0])  # a zero vector has similarity 0
    with pytest.raises(ValueError, match=r"k must be between 1 and N - 1 = 3.*k=4"):
        nb.nearest_neighbours(features, [0], k=4)
    with pytest.raises(ValueError, match=r"Query indices must be in \[0, 4\)"):
        nb.nearest_neighbours(features, [4], k=1)


def test_pca_2d_is_the_svd_projection_in_variance_order():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 5)) * [0.5, 4.0, 1.0, 2.0, 0.1] + 10.0
    points = nb.pca_2d(features)
    centred = features - features.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    assert points.shape == (200, 2) and points.dtype == np.float32
    for column in range(2):  # equal to U * S up to the sign of each component
        reference = u[:, column] * s[column]
        sign = np.sign(points[:, column] @ reference)
        np.testing.assert_allclose(points[:, column], sign * reference, rtol=1e-4, atol=1e-4)
    variances = (points.astype(np.float64) ** 2).sum(axis=0)
    np.testing.assert_allclose(variances, s[:2] ** 2, rtol=1e-5)
    assert variances[0] > variances[1]
    np.testing.assert_allclose(points.mean(axis=0), 0.0, atol=1e-4)
    # The largest-magnitude loading of the first component (dimension 1) is positive.
    assert np.corrcoef(points[:, 0], features[:, 1])[0, 1] > 0.9
    np.testing.assert_array_equal(nb.pca_2d(features[:, :1])[:, 1], 0.0)  # one dimension


def test_match_colours_and_label_text():
    assert nb.match_colours(3, [3, 1, -1]) == [
        nb.MATCH_COLOUR, nb.MISMATCH_COLOUR, nb.UNKNOWN_COLOUR,
    ]  # fmt: skip
    assert nb.match_colours(None, [3, 1]) == [nb.UNKNOWN_COLOUR] * 2
    assert nb.match_colours(-1, np.array([0])) == [nb.UNKNOWN_COLOUR]
    assert nb.label_text(1, ["cat", "dog"]) == "dog"
    assert nb.label_text(5, ["cat", "dog"]) == "5" and nb.label_text(2) == "2"
    assert nb.label_text(-1, ["cat"]) == "" and nb.label_text(None) == ""


def _pixel(png, y, x):
    return png[y, x, :3]


@pytest.mark.parametrize("queries,k", [(3, 4), (1, 7)])
def test_grid_png_has_the_grid_size_and_green_and_red_frames(tmp_path, queries, k):
    images = np.full((12, 8, 8, 3), 255, np.uint8)  # white, so the frames stand out
    labels = np.arange(12) % 2
    chosen = np.arange(queries)
    indices = (chosen[:, None] + np.arange(1, k + 1)) % 12  # neighbour 1 mismatches, 2 matches
    sims = np.linspace(1, 0, k)[None].repeat(queries, 0)
    path = nb.plot_neighbours_grid(
        images, chosen, indices, sims, tmp_path / "grid.png", labels=labels,
        class_names=["even", "odd"], title="model on data",
    )  # fmt: skip
    png = matplotlib.image.imread(path)
    height, width = nb.grid_pixel_size(queries, k)
    assert png.shape == (height, width, 4)
    assert (height, width) == (nb.HEADER_HEIGHT + queries * nb.CELL_HEIGHT, (k + 1) * nb.CELL_WIDTH)
    middle = nb.HEADER_HEIGHT + nb.CELL_HEIGHT // 2 - 10  # halfway down the first row's images
    left_edge = [c * nb.CELL_WIDTH + 9 for c in range(3)]  # inside each frame's left side
    expected = [nb.QUERY_COLOUR, nb.MISMATCH_COLOUR, nb.MATCH_COLOUR]
    for x, colour in zip(left_edge, expected, strict=True):
        np.testing.assert_allclose(
            _pixel(png, middle, x), matplotlib.colors.to_rgb(colour), atol=0.02
        )


def test_embedding_png_with_and_without_labels(tmp_path):
    features = np.random.default_rng(0).normal(size=(30, 4))
    labelled = nb.plot_embedding(
        features, tmp_path / "a.png", labels=np.arange(30) % 3, class_names=["a", "b", "c"]
    )
    plain = nb.plot_embedding(features, tmp_path / "sub" / "b.png", title="t")
    for path in (labelled, plain):
        assert matplotlib.image.imread(path).shape == (600, 700, 4)


def _encoder(size=8):
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((size, size, 3)), keras.layers.Flatten(), keras.layers.Dense(4)]
    )


def test_write_neighbours_on_unlabelled_arrays_samples_and_says_so(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (40, 8, 8, 3)).astype(np.uint8)
    info = nb.write_neighbours(
        _encoder(), images, tmp_path / "grid.png", queries=2, neighbours=3, split="train",
        image_size=8, batch_size=16, max_examples=20, embedding_plot=tmp_path / "pca.png",
    )  # fmt: skip
    assert info["num_examples"] == 20 and info["total"] == 40 and info["match_rate"] is None
    assert "a sample of 20 of 40 images (seed 0)" in info["extent"]
    assert matplotlib.image.imread(info["grid"]).shape[:2] == nb.grid_pixel_size(2, 3)
    assert (tmp_path / "pca.png").exists()
    with pytest.raises(ValueError, match=r"queries=30 is more than the 20 images sampled"):
        nb.write_neighbours(_encoder(), images, tmp_path / "x.png", queries=30, max_examples=20)
    with pytest.raises(ValueError, match=r"neighbours=8 needs at least 9 images.* 5 in the"):
        nb.write_neighbours(_encoder(), images[:5], tmp_path / "x.png", queries=2, split="train",
                            image_size=8)  # fmt: skip
    assert not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The `tiny` preset's encoder (untrained), exported in the zoo format."""
    import keras

    from kclr import zoo
    from kclr.run import config
    from kclr.run import fit as runs

    keras.utils.set_random_seed(0)
    encoder, head = runs.build_models(config.resolve("tiny"))
    encoder(np.zeros((1, 16, 16, 3), np.float32))
    path = tmp_path_factory.mktemp("model") / "export"
    zoo.save(encoder, path, head=head, preprocessing={"image_size": 16})
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/ and test/ class folders `blue`, `green`, `red` of 8-pixel PNGs (6 test each)."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split, count in (("train", 2), ("test", 6)):
        for channel, name in enumerate(("blue", "green", "red")):
            sub = root / split / name
            sub.mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 60, (8, 8, 3)).astype(np.uint8)
                image[..., 2 - channel] += 150
                tf.io.write_file(str(sub / f"{i}.png"), tf.io.encode_png(image))
    return root


def test_cli_writes_the_grid_and_the_embedding_plot(exported, folder, tmp_path):
    grid, pca = tmp_path / "grid.png", tmp_path / "pca.png"
    result = CliRunner().invoke(
        main,
        ["eval", "neighbours", str(exported), "--data", str(folder), "--out", str(grid),
         "--queries", "3", "--neighbours", "4", "--embedding-plot", str(pca)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 queries x 4 neighbours among all 18 images of" in result.output
    assert "Neighbours with the query's label:" in result.output
    assert f"Neighbour grid: {grid}" in result.output and f"Embedding plot: {pca}" in result.output
    assert matplotlib.image.imread(grid).shape[:2] == nb.grid_pixel_size(3, 4)
    assert matplotlib.image.imread(pca).shape[:2] == (600, 700)


def test_cli_bad_input_is_a_clear_error(exported, folder, tmp_path):
    runner = CliRunner()
    out = str(tmp_path / "grid.png")

    def run(*args):
        return runner.invoke(main, ["eval", "neighbours", *args, "--out", out])

    no_model = run(str(tmp_path / "missing-model"), "--data", str(folder))
    assert no_model.exit_code != 0 and "missing-model" in no_model.output
    assert "Traceback" not in no_model.output
    no_data = run(str(exported), "--data", str(tmp_path / "missing-data"))
    assert no_data.exit_code != 0 and "does not exist" in no_data.output
    too_many = run(str(exported), "--data", str(folder), "--queries", "19")
    assert too_many.exit_code != 0
    assert "queries=19 is more than the 18 images in the 'test' split" in too_many.output
    over_sample = run(str(exported), "--data", str(folder), "--queries", "9", "--max-examples", "5")
    assert over_sample.exit_code != 0 and "--max-examples" in over_sample.output
    zero = run(str(exported), "--data", str(folder), "--queries", "0")
    assert zero.exit_code == 2 and "--queries" in zero.output
    assert not (tmp_path / "grid.png").exists()


def test_public_names_resolve_lazily_to_this_module():
    import kclr.evaluation
    from kclr.evaluation import neighbours

    for name in ("write_neighbours", "nearest_neighbours", "plot_neighbours_grid",
                 "plot_embedding", "pca_2d"):  # fmt: skip
        assert name in kclr.evaluation.__all__
        assert getattr(kclr.evaluation, name) is getattr(neighbours, name)
