"""Downloads: resume after a cut, content checks, HTTP errors, sha256 record, progress."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from bucket_server import BucketServer

from kclr.zoo.folder.safety import IntegrityError, sha256_of
from kclr.zoo.sources import http as download
from kclr.zoo.sources.http import (
    TF_TABLE_MAGIC,
    AccessDeniedError,
    ContentError,
    HashRecord,
    NotFoundError,
    OfflineError,
)

INDEX = np.random.default_rng(0).bytes(300_000) + TF_TABLE_MAGIC  # a fake but valid index


@pytest.fixture
def bucket(zoo_env):
    with BucketServer() as server:
        server.files["/ckpt/model.ckpt-1.index"] = INDEX
        yield server


def test_resume_after_a_cut_connection(bucket, tmp_path):
    bucket.faults["/ckpt/model.ckpt-1.index"] = ["cut:100000", "cut:50000"]
    target = download.fetch(
        f"{bucket.url}/ckpt/model.ckpt-1.index", tmp_path / "model.ckpt-1.index", quiet=True
    )
    assert target.read_bytes() == INDEX
    assert bucket.requests == [
        ("/ckpt/model.ckpt-1.index", None),
        ("/ckpt/model.ckpt-1.index", "bytes=100000-"),
        ("/ckpt/model.ckpt-1.index", "bytes=150000-"),
    ]
    assert not (tmp_path / "model.ckpt-1.index.part").exists()


def test_a_partial_download_is_kept_and_resumed_later(bucket, tmp_path):
    url = f"{bucket.url}/ckpt/model.ckpt-1.index"
    bucket.faults["/ckpt/model.ckpt-1.index"] = ["cut:1000", "cut:1000"]
    with pytest.raises(OfflineError, match="partial download is kept"):
        download.fetch(url, tmp_path / "model.ckpt-1.index", quiet=True, attempts=2)
    assert (tmp_path / "model.ckpt-1.index.part").stat().st_size == 2000
    assert not (tmp_path / "model.ckpt-1.index").exists()
    download.fetch(url, tmp_path / "model.ckpt-1.index", quiet=True)
    assert bucket.requests[-1] == ("/ckpt/model.ckpt-1.index", "bytes=2000-")
    assert (tmp_path / "model.ckpt-1.index").read_bytes() == INDEX


def test_a_server_without_ranges_restarts_cleanly(bucket, tmp_path):
    bucket.ranges = False
    bucket.faults["/ckpt/model.ckpt-1.index"] = ["cut:5000"]
    target = download.fetch(
        f"{bucket.url}/ckpt/model.ckpt-1.index", tmp_path / "model.ckpt-1.index", quiet=True
    )
    assert target.read_bytes() == INDEX


def test_a_login_page_never_enters_the_cache(bucket, tmp_path):
    bucket.faults["/ckpt/model.ckpt-1.index"] = ["login"]
    with pytest.raises(ContentError, match=r"served an HTML page \(a sign-in or error page\?\)"):
        download.fetch(f"{bucket.url}/ckpt/model.ckpt-1.index", tmp_path / "x.index", quiet=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("x.index", b"\0" * 1000, "does not end with the TF checkpoint index magic number"),
        ("x.zip", b"PK\x03\x04 truncated", "not a complete zip archive"),
        ("x.data-00000-of-00001", b"", "it is empty"),
    ],
)
def test_files_that_are_not_what_they_claim_are_refused(bucket, tmp_path, name, data, message):
    bucket.files[f"/bad/{name}"] = data
    with pytest.raises(ContentError, match=message):
        download.fetch(f"{bucket.url}/bad/{name}", tmp_path / name, quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_http_errors_say_what_happened(bucket, tmp_path):
    url = f"{bucket.url}/ckpt/model.ckpt-1.index"
    bucket.faults["/ckpt/model.ckpt-1.index"] = ["403", "401"]
    for status in (403, 401):
        with pytest.raises(AccessDeniedError, match=f"access denied at {url} \\(HTTP {status}\\)"):
            download.fetch(url, tmp_path / "a.index", quiet=True)
    with pytest.raises(NotFoundError, match=f"not found at {bucket.url}/nothing.index"):
        download.fetch(f"{bucket.url}/nothing.index", tmp_path / "b.index", quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_sha256_is_recorded_on_first_use_and_checked_later(tmp_path):
    record = HashRecord(tmp_path / "sha256.json")
    path = tmp_path / "f.bin"
    path.write_bytes(b"first")
    first = record.check(path, "http://x/f.bin")
    assert first == sha256_of(path)
    assert record.read() == {"http://x/f.bin": first}
    record.check(path, "http://x/f.bin")  # unchanged: fine
    path.write_bytes(b"changed")
    changed = sha256_of(path)
    with pytest.raises(IntegrityError) as info:
        record.check(path, "http://x/f.bin")
    assert first in str(info.value) and changed in str(info.value)


def test_progress_bar(bucket, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(download, "PROGRESS_MIN_BYTES", 0)
    download.fetch(f"{bucket.url}/ckpt/model.ckpt-1.index", tmp_path / "p.index")
    err = capsys.readouterr().err
    assert "p.index  100% 0.3/0.3 MiB" in err and "MiB/s" in err


def test_offline_mode_downloads_nothing(bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("KCLR_OFFLINE", "1")
    with pytest.raises(OfflineError, match="Offline mode is on"):
        download.fetch(f"{bucket.url}/ckpt/model.ckpt-1.index", tmp_path / "o.index")
    assert bucket.requests == []


def test_fetch_once_refuses_a_truncated_index_and_keeps_nothing(bucket, tmp_path):
    record = HashRecord(tmp_path / "sha256.json")
    bucket.files["/ckpt/model.ckpt-2.index"] = INDEX[:-100]  # the end of the file is missing
    url = f"{bucket.url}/ckpt/model.ckpt-2.index"
    with pytest.raises(ContentError) as info:
        download.fetch_once(url, tmp_path / "m" / "model.ckpt-2.index", record, quiet=True)
    message = str(info.value)
    assert url in message and "magic number" in message
    assert "KCLR_OFFICIAL_CHECKPOINT_URL" in message and "kclr zoo convert --from" in message
    assert list((tmp_path / "m").iterdir()) == [] and record.read() == {}


def test_fetch_once_removes_a_tampered_download_and_names_the_fix(bucket, tmp_path):
    record = HashRecord(tmp_path / "sha256.json")
    url = f"{bucket.url}/ckpt/model.ckpt-1.index"
    target = tmp_path / "m" / "model.ckpt-1.index"
    first = download.fetch_once(url, target, record, quiet=True)
    assert first == sha256_of(target) and record.read() == {url: first}
    target.unlink()  # the cache was cleared, the record kept; the server's file then changed
    bucket.files["/ckpt/model.ckpt-1.index"] = b"x" + INDEX
    with pytest.raises(IntegrityError) as info:
        download.fetch_once(url, target, record, quiet=True)
    message = str(info.value)
    assert os.fspath(target) in message and url in message and first in message
    assert "delete its line from that record" in message
    assert list(target.parent.iterdir()) == [] and record.read() == {url: first}


_RECORDER = """
import pathlib, sys
from kclr.zoo.sources.http import HashRecord

folder, index = pathlib.Path(sys.argv[1]), int(sys.argv[2])
record = HashRecord(folder / "sha256.json")
for step in range(20):
    file = folder / f"f{index}-{step}"
    file.write_bytes(f"{index} {step}".encode())
    record.check(file, f"http://x/{file.name}")
"""


def test_the_record_keeps_every_line_of_concurrent_writers(tmp_path):
    writers = [
        subprocess.Popen([sys.executable, "-c", _RECORDER, str(tmp_path), str(i)]) for i in range(4)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0] * 4
    record = HashRecord(tmp_path / "sha256.json").read()
    assert len(record) == 80
    assert record["http://x/f3-19"] == sha256_of(tmp_path / "f3-19")
