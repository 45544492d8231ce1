"""kclr.durable: atomic writes, staged folders, the inter-process lock."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from kclr import durable


def _names(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    assert durable.atomic_write(path, b"old") == path
    durable.atomic_write_text(path, "néw")
    assert path.read_bytes() == "néw".encode()
    assert _names(tmp_path) == ["results.json"]


def test_a_failure_mid_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "features.npy"
    path.write_bytes(b"old content")
    with pytest.raises(RuntimeError, match="cut"):
        with durable.atomic_writer(path) as handle:
            handle.write(b"half of the new")
            raise RuntimeError("cut in the middle of the write")
    assert path.read_bytes() == b"old content"
    assert _names(tmp_path) == ["features.npy"]  # the temporary file is gone


def test_a_disk_error_at_fsync_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    path.write_bytes(b"previous checkpoint")

    def full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        durable.atomic_write(path, b"x" * 1000)
    assert path.read_bytes() == b"previous checkpoint"
    assert _names(tmp_path) == ["ckpt.npz"]


def test_atomic_writer_streams_numpy(tmp_path):
    with durable.atomic_writer(tmp_path / "a.npy") as handle:
        np.save(handle, np.arange(3))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), [0, 1, 2])


def test_staged_folder_replaces_an_existing_folder_whole(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with durable.staged_folder(target) as staging:
        assert staging.parent == tmp_path and staging != target
        (staging / "config.json").write_text("{}")
        (staging / "sub").mkdir()
        (staging / "sub" / "w.bin").write_bytes(b"w")
        assert (target / "old.txt").exists()  # untouched until the block ends
    assert _names(target) == ["config.json", "sub"]
    assert _names(tmp_path) == ["model"]  # no staging folder, no backup left


def test_a_failed_staged_folder_leaves_the_target_untouched(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(ValueError, match="conversion failed"):
        with durable.staged_folder(target) as staging:
            (staging / "config.json").write_text("{}")
            raise ValueError("conversion failed")
    assert _names(target) == ["old.txt"] and _names(tmp_path) == ["model"]


def test_a_failed_move_puts_the_old_folder_back(tmp_path, monkeypatch):
    target, staged = tmp_path / "export", tmp_path / "staged"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staged.mkdir()
    (staged / "new.txt").write_text("new")
    real = pathlib.Path.rename

    def rename(self, destination):
        if self == staged:  # the old folder was moved aside; the new one fails to take its name
            raise OSError(5, "Input/output error")
        return real(self, destination)

    monkeypatch.setattr(pathlib.Path, "rename", rename)
    with pytest.raises(OSError, match="Input/output"):
        durable.move_into_place(staged, target)
    assert (target / "old.txt").read_text() == "old"
    assert _names(tmp_path) == ["export", "staged"]


def test_move_into_place_replaces_a_file(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"old")
    (tmp_path / "staged.tflite").write_bytes(b"new")
    durable.move_into_place(tmp_path / "staged.tflite", tmp_path / "model.tflite")
    assert (tmp_path / "model.tflite").read_bytes() == b"new"
    assert _names(tmp_path) == ["model.tflite"]


_HOLDER = textwrap.dedent(
    """
    import pathlib, sys, time
    from kclr import durable

    lock, log, name = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
    with durable.lock(lock):
        with open(log, "a") as out:
            out.write(f"{name} in\\n")
        time.sleep(0.5)
        with open(log, "a") as out:
            out.write(f"{name} out\\n")
    """
)


def _holder(tmp_path: pathlib.Path, name: str) -> subprocess.Popen:
    args = [sys.executable, "-c", _HOLDER, str(tmp_path / "x.lock"), str(tmp_path / "log"), name]
    return subprocess.Popen(args)


def test_the_lock_serialises_two_processes(tmp_path):
    first, second = _holder(tmp_path, "a"), _holder(tmp_path, "b")
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0
    lines = (tmp_path / "log").read_text().splitlines()
    # Each process is alone between its "in" and its "out": the lines never interleave.
    assert lines in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"]), lines


def test_a_lock_held_too_long_names_the_lock_file(tmp_path):
    holder = _holder(tmp_path, "a")
    deadline = time.monotonic() + 30
    while not (tmp_path / "log").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    waited = []
    with pytest.raises(durable.LockTimeoutError, match="x.lock") as info:
        with durable.lock(tmp_path / "x.lock", timeout=0.05, waiting=lambda: waited.append(1)):
            pass
    assert "for more than 0.05 s" in str(info.value) and waited == [1]
    assert holder.wait(timeout=60) == 0
    with durable.lock(tmp_path / "x.lock", timeout=5):  # free again once the holder ended
        pass


def test_atomic_path_keeps_the_suffix_and_cleans_up_a_failed_writer(tmp_path):
    target = tmp_path / "classifier.keras"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with durable.atomic_path(target) as staged:
            assert staged.suffix == ".keras" and staged.parent == tmp_path
            staged.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["classifier.keras"]
    with durable.atomic_path(target) as staged:
        staged.write_bytes(b"new")
    assert target.read_bytes() == b"new" and _names(tmp_path) == ["classifier.keras"]
