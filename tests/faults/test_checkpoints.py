"""Checkpoints that cannot be lost: a full disk, a corrupt latest checkpoint, a second `kclr fit`."""

from __future__ import annotations

import io
import json
import pathlib
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from kclr.run import fit as runs
from kclr.run import lock as run_lock
from kclr.trainer import checkpoint_files
from kclr.trainer.checkpoint_files import CheckpointError

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from fault_processes import TINY, kclr_fit, tiny_config  # noqa: E402


def test_newest_good_passes_over_a_truncated_checkpoint(tmp_path):
    for step in (4, 8):
        data = io.BytesIO()
        np.savez(data, w=np.full(1000, step, np.float32))
        checkpoint_files.write_checkpoint(tmp_path, f"ckpt-{step:09d}.npz", data.getvalue())
    newest = tmp_path / "ckpt-000000008.npz"
    assert checkpoint_files.newest_good(tmp_path, {"file": newest.name})[1] is None
    newest.write_bytes(newest.read_bytes()[:100])
    info, note = checkpoint_files.newest_good(tmp_path, {"file": newest.name})
    assert info["file"] == "ckpt-000000004.npz" and info["step"] == 4
    assert note == (
        f"Checkpoint {newest} is corrupt (its SHA-256 does not match the one recorded); "
        "resuming from the previous good one, ckpt-000000004.npz (step 4)."
    )
    (tmp_path / "ckpt-000000004.npz").write_bytes(b"")
    with pytest.raises(CheckpointError, match="no older checkpoint .* verifies"):
        checkpoint_files.newest_good(tmp_path, {"file": newest.name})


@pytest.mark.slow
def test_corrupt_latest_checkpoint_is_named_and_the_previous_good_one_is_used(tmp_path, capsys):
    cfg = tiny_config(train__steps=10, train__checkpoint_every_steps=5)
    full = runs.fit(cfg, out=tmp_path / "run", verbose=0)
    checkpoints = tmp_path / "run/checkpoints"
    assert sorted(p.name for p in checkpoints.glob("ckpt-*.npz")) == [
        "ckpt-000000008.npz", "ckpt-000000010.npz",
    ]  # fmt: skip
    newest = checkpoints / "ckpt-000000010.npz"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a torn write
    assert checkpoint_files.problem(newest) == "its SHA-256 does not match the one recorded"

    resumed = runs.fit(cfg, out=tmp_path / "run", resume=True, verbose=1)
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if "is corrupt" in line]
    assert notes == [
        f"Checkpoint {newest} is corrupt (its SHA-256 does not match the one recorded); "
        "resuming from the previous good one, ckpt-000000008.npz (step 8)."
    ]
    assert "from ckpt-000000008.npz (step 8)" in out
    assert resumed.steps == 10
    for a, b in zip(full.trainer.get_weights(), resumed.trainer.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert checkpoint_files.problem(newest) is None  # rewritten by the resumed run


def _ignore_sigxfsz():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE fails with EFBIG


@pytest.mark.slow
def test_disk_full_keeps_the_previous_checkpoint_and_names_directory_and_free_space(tmp_path):
    args = [*TINY, "--set", "train.steps=2000", "--set", "train.checkpoint_every_steps=4"]
    run = kclr_fit(*args, "--out", str(tmp_path / "run"), preexec_fn=_ignore_sigxfsz)
    checkpoints = tmp_path / "run/checkpoints"
    deadline = time.time() + 240
    while (
        time.time() < deadline and run.poll() is None and not (checkpoints / "latest.json").exists()
    ):
        time.sleep(0.05)
    size = next(checkpoints.glob("ckpt-*.npz")).stat().st_size
    # From now on no file may grow past half a checkpoint: the disk is full for the writer.
    resource.prlimit(run.pid, resource.RLIMIT_FSIZE, (size // 2, size // 2))
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 1, output
    error = next(line for line in output.splitlines() if "Could not write checkpoint" in line)
    assert f"to {checkpoints}:" in error and "free there" in error, error
    assert "The earlier checkpoints are intact" in error
    latest = json.loads((checkpoints / "latest.json").read_text())
    assert 4 <= latest["step"] < 2000
    assert checkpoint_files.problem(checkpoints / latest["file"]) is None
    assert all(checkpoint_files.problem(p) is None for p in checkpoints.glob("ckpt-*.npz"))
    assert not [p for p in checkpoints.iterdir() if ".tmp" in p.name]  # no half-written file


def test_second_fit_on_a_run_directory_in_use_is_refused(tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        import socket

        (run_dir / ".lock").write_text(json.dumps(
            {"host": socket.gethostname(), "pid": owner.pid, "started": "2026-01-01T00:00:00"}
        ))  # fmt: skip
        with pytest.raises(run_lock.RunDirectoryInUseError, match=rf"in use .*pid {owner.pid}"):
            run_lock.acquire(run_dir)
        with pytest.raises(run_lock.RunDirectoryInUseError, match=f"pid {owner.pid} on host"):
            runs.fit(tiny_config(), out=run_dir, resume=True, verbose=0)
        assert not (run_dir / "config.yaml").exists()  # refused before touching anything
    finally:
        owner.kill()
        owner.wait()


def test_stale_lock_of_a_dead_process_is_taken_over_and_said_so(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    (tmp_path / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    lines: list[str] = []
    lock = run_lock.acquire(tmp_path, echo=lines.append)
    assert lines == [
        f"Took over the stale lock {tmp_path / '.lock'}: its owner (pid {dead.pid} on host "
        f"{socket.gethostname()}) is no longer running."
    ]
    import os

    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / ".lock").exists()
