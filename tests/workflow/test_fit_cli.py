"""`kclr fit` on the command line: output lines and clean errors."""

from __future__ import annotations

from click.testing import CliRunner

from kclr.cli import main


def test_fit_prints_run_dir_curves_and_export(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        ["fit", "--preset", "tiny", "--out", str(out), "-q",
         "--set", "train.steps=1", "--set", "eval.monitor=false"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"Run directory: {out}" in result.output
    assert f"Training curves: {out / 'curves.png'}" in result.output
    assert f"Nearest neighbours: {out / 'neighbours.png'}" in result.output  # no monitor: train
    assert "epoch 1/1 - step 1" in result.output
    assert (out / "export" / "config.json").exists()


def test_fit_errors_are_clean_and_touch_nothing(tmp_path):
    runner = CliRunner()
    bad_key = runner.invoke(main, ["fit", "--preset", "tiny", "--set", "train.step=3"])
    assert bad_key.exit_code != 0 and "Did you mean 'train.steps'" in bad_key.output
    no_data = runner.invoke(main, ["fit", "--preset", "simclr_r50", "--out", str(tmp_path / "a")])
    assert no_data.exit_code != 0 and "--data SOURCE" in no_data.output
    assert not (tmp_path / "a").exists()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("keep me")
    taken = runner.invoke(main, ["fit", "--preset", "tiny", "--out", str(tmp_path / "b")])
    assert taken.exit_code != 0 and "--resume" in taken.output
    assert (tmp_path / "b" / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["notes.txt"]
    no_preset = runner.invoke(main, ["fit"])
    assert no_preset.exit_code != 0 and "--preset" in no_preset.output
    for result in (bad_key, no_data, taken, no_preset):
        assert "Traceback" not in result.output
