"""Downloads of the authors' checkpoints (plain HTTPS, standard library only).

A download is written to `<file>.part`, resumed with HTTP range requests after a cut
connection, checked to be what it claims (a TF checkpoint index ends with the
table magic number, a zip starts with `PK` and has a central directory, nothing is an
HTML page) and only then moved into place atomically (`kclr.durable`). The sha256 of
every file is recorded on first use (trust on first use, in the cache's `sha256.json`)
and checked on every later use; a changed file is refused with both hashes. HTTP 404
and 401/403 are reported as "not found at URL" / "access denied at URL", and the next
source of the model (e.g. the v1 zip after the anonymous files) is tried before giving up.

Several processes may fill one cache at once (workers of a cluster on a shared home
folder): `fetch_once` holds a lock per file, so one process downloads it and the others
wait, then check the same file against the record; the record is updated under its own
lock, so no process loses another's line. Under that lock `<file>.part` has one writer,
which is what lets a later call resume it.
"""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from typing import Any

from kclr import durable
from kclr.zoo.folder.safety import IntegrityError, safe_extract, sha256_of, verify_sha256

TF_TABLE_MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")  # leveldb/TF table footer
ZIP_MAGIC = b"PK\x03\x04"
RECORD_FILE = "sha256.json"
_CHUNK = 1 << 20
PROGRESS_MIN_BYTES = 8 << 20  # smaller files download without a progress bar


class OfflineError(RuntimeError):
    """A download is needed but the network is off or unreachable."""


class DownloadError(RuntimeError):
    """A server answered, but not with the file (`url`, `status` say what happened)."""

    def __init__(self, message: str, url: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class NotFoundError(DownloadError):
    """HTTP 404: the file is not at that URL."""


class AccessDeniedError(DownloadError):
    """HTTP 401/403: the bucket refuses anonymous access."""


class ContentError(DownloadError):
    """The server sent something else (a sign-in page, a truncated file)."""


def is_offline() -> bool:
    """True when `HF_HUB_OFFLINE` or `KCLR_OFFLINE` is set to a true value."""
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "KCLR_OFFLINE")
    )


def is_url(spec: str | os.PathLike) -> bool:
    return isinstance(spec, str) and spec.split("://", 1)[0] in {"http", "https"}


# ----------------------------------------------------------------------------- content
def expected_kind(name: str) -> str | None:
    """What a file name promises: `"tf-index"`, `"tf-data"`, `"zip"` or None (unchecked)."""
    if name.endswith(".index"):
        return "tf-index"
    if ".data-" in name:
        return "tf-data"
    if name.endswith(".zip"):
        return "zip"
    return None


def check_content(path: str | os.PathLike, kind: str | None, url: str = "") -> None:
    """Raises `ContentError` unless `path` looks like a `kind` file."""
    path = pathlib.Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(512)
        handle.seek(max(0, size - 8))
        tail = handle.read(8)
    where = url or os.fspath(path)
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head")):
        raise ContentError(
            f"{where} served an HTML/XML page (a sign-in or error page?) instead of the "
            "checkpoint file; the bucket may need a login. Nothing was kept.",
            url,
        )
    problem = None
    if size == 0:
        problem = "it is empty"
    elif kind == "tf-index" and tail != TF_TABLE_MAGIC:
        problem = "it does not end with the TF checkpoint index magic number"
    elif kind == "zip" and (not head.startswith(ZIP_MAGIC) or not zipfile.is_zipfile(path)):
        problem = "it is not a complete zip archive (no PK header or central directory)"
    if problem:
        raise ContentError(
            f"The file from {where} is not a {kind} file: {problem} ({size} bytes). It was "
            "not kept; the download was cut or the server sent something else. Try again; "
            "if it persists, set KCLR_OFFICIAL_CHECKPOINT_URL to a mirror of the authors' "
            "bucket, or download the file yourself and pass it to `kclr zoo convert --from`.",
            url,
        )


# ----------------------------------------------------------------------------- progress
class _Progress:
    """A one-line progress bar on stderr: `name  42% 120/286 MiB 35.1 MiB/s`."""

    def __init__(self, name: str, total: int, start: int, quiet: bool) -> None:
        self.name, self.total, self.done = name, total, start
        self.quiet = quiet
        self.started = time.monotonic()
        self.first = start
        self.last = 0.0

    def update(self, count: int, force: bool = False) -> None:
        self.done += count
        now = time.monotonic()
        if self.quiet or (not force and now - self.last < 0.5):
            return
        self.last = now
        rate = (self.done - self.first) / max(now - self.started, 1e-6) / 2**20
        if self.total:
            percent = 100 * self.done // self.total
            line = f"{percent:3d}% {self.done / 2**20:.1f}/{self.total / 2**20:.1f} MiB"
        else:
            line = f"{self.done / 2**20:.1f} MiB"
        print(f"\r{self.name}  {line} {rate:.1f} MiB/s", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self.quiet:
            self.update(0, force=True)
            print(file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- fetch
def _http_error(error: urllib.error.HTTPError, url: str) -> DownloadError:
    if error.code == 404:
        return NotFoundError(f"not found at {url} (HTTP 404)", url, 404)
    if error.code in (401, 403):
        return AccessDeniedError(
            f"access denied at {url} (HTTP {error.code}): the bucket does not allow "
            "anonymous downloads of this file",
            url,
            error.code,
        )
    return DownloadError(f"HTTP {error.code} ({error.reason}) at {url}", url, error.code)


def _transfer(url: str, partial: pathlib.Path, name: str, quiet: bool) -> bool:
    """One request; appends to `partial`. True when the file is complete."""
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "kclr"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=60)  # noqa: S310 - http(s) only
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # our partial is complete or longer than the file
            partial.unlink()
            return False
        raise _http_error(error, url) from error
    with response:
        if "text/html" in (response.headers.get("Content-Type") or "") and not have:
            raise ContentError(
                f"{url} served an HTML page (a sign-in or error page?) instead of the "
                "checkpoint file; the bucket may need a login. Nothing was kept.",
                url,
            )
        resumed = response.status == 206 and have
        length = int(response.headers.get("Content-Length") or 0)
        total = (have if resumed else 0) + length
        progress = _Progress(
            name, total, have if resumed else 0, quiet or total < PROGRESS_MIN_BYTES
        )
        with open(partial, "ab" if resumed else "wb") as sink:
            try:
                while chunk := response.read(_CHUNK):
                    sink.write(chunk)
                    progress.update(len(chunk))
            finally:
                progress.close()
        return not length or partial.stat().st_size >= total


def fetch(
    url: str,
    destination: str | os.PathLike,
    sha256: str | None = None,
    quiet: bool = False,
    attempts: int = 5,
    kind: str | None = None,
) -> pathlib.Path:
    """Downloads `url` to `destination`: resumable, content-checked, moved in atomically.

    Args:
        url: http(s) URL.
        destination: final path; the download grows in `<destination>.part`, which a
            later call resumes with an HTTP range request. One writer per destination:
            where other processes may fetch the same file, call `fetch_once`, which
            holds a lock around this.
        sha256: pinned hash; a mismatch is refused (`IntegrityError`) and not kept.
        quiet: no progress bar.
        attempts: connection attempts (each resumes where the last one stopped).
        kind: content check (`expected_kind` of the name by default).

    Raises:
        NotFoundError, AccessDeniedError, ContentError, OfflineError, IntegrityError.
    """
    destination = pathlib.Path(destination)
    if is_offline():
        raise OfflineError(
            f"Offline mode is on (HF_HUB_OFFLINE/KCLR_OFFLINE) and {url} is not cached. "
            f"Download it on a machine with network access and pass the file to "
            "`kclr zoo convert --from FILE`, or unset the offline variables."
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    last_error: Exception | None = None
    for attempt in range(attempts):
        try:
            if _transfer(url, partial, destination.name, quiet):
                break
        except DownloadError:
            raise
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            last_error = error  # a cut connection: resume from what arrived
            if not partial.exists() or not partial.stat().st_size:
                raise OfflineError(
                    f"Could not download {url}: {error}. Check the network (or set "
                    "KCLR_OFFICIAL_CHECKPOINT_URL to a mirror of the authors' bucket), or "
                    "download the file yourself and run `kclr zoo convert --from FILE "
                    "--arch ... --out DIR`."
                ) from error
            time.sleep(min(0.1 * 2**attempt, 2.0))
    else:
        raise OfflineError(
            f"Could not complete {url} after {attempts} attempts ({last_error}); the partial "
            f"download is kept in {os.fspath(partial)!r} and the next try resumes it."
        )
    try:
        check_content(partial, kind or expected_kind(destination.name), url)
        verify_sha256(partial, sha256)
    except Exception:
        partial.unlink(missing_ok=True)
        raise
    return durable.move_into_place(partial, destination)


# ----------------------------------------------------------------------------- sha256 record
class HashRecord:
    """sha256 of every downloaded file by URL, recorded on first use (a JSON file)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = pathlib.Path(path)

    def read(self) -> dict[str, str]:
        if not self.path.is_file():
            return {}
        return json.loads(self.path.read_text(encoding="utf-8"))

    def lock_path(self, file: str | os.PathLike | None = None) -> pathlib.Path:
        """The inter-process lock of the record, or of the download of `file`.

        Locks are hidden files beside the record (`.sha256.json.lock`, and
        `.locks/<name>--<file>.lock` for a file under the record's folder), so the
        download folders hold only the downloaded files.
        """
        if file is None:
            return self.path.with_name(f".{self.path.name}.lock")
        file = pathlib.Path(file)
        try:
            name = "--".join(file.relative_to(self.path.parent).parts)
        except ValueError:
            return file.with_name(f".{file.name}.lock")
        return self.path.parent / ".locks" / f"{name}.lock"

    def check(self, file: str | os.PathLike, url: str) -> str:
        """Records `file`'s sha256 for `url` on first use; refuses a changed file later.

        The record is read, updated and replaced under its lock, so a line that another
        process adds at the same time is kept.
        """
        actual = sha256_of(file)
        with durable.lock(self.lock_path()):
            record = self.read()
            recorded = record.get(url)
            if recorded is None:
                record[url] = actual
                text = json.dumps(record, indent=2, sort_keys=True)
                durable.atomic_write_text(self.path, text)
        if recorded is not None and recorded != actual:
            raise IntegrityError(
                f"Refusing {os.fspath(file)!r} from {url}: its sha256 is {actual} but "
                f"{recorded} was recorded when it was first downloaded ({self.path}). The "
                "file changed since and was not kept; if you trust the new one, delete its "
                "line from that record (or run `kclr zoo cache clear --all`) and try again."
            )
        return actual

    def forget(self, urls: list[str]) -> None:
        """Removes the lines of `urls` (files that turned out unusable), under the lock."""
        with durable.lock(self.lock_path()):
            record = self.read()
            if any(url in record for url in urls):
                kept = {url: sha for url, sha in record.items() if url not in urls}
                durable.atomic_write_text(self.path, json.dumps(kept, indent=2, sort_keys=True))


def fetch_once(url: str, target: pathlib.Path, record: HashRecord, quiet: bool = False) -> str:
    """Downloads `url` to `target` unless it is there; checks it against the sha256 record.

    Safe when several processes ask for the same file at once: a lock per file
    (`record.lock_path(target)`) lets one of them download it, the others wait and then
    check the same file against the record. A file that fails the check is removed when this
    call downloaded it (a file already in the cache is left for the user to inspect).

    Returns:
        The file's sha256.
    """
    target = pathlib.Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)

    def waiting() -> None:
        if not quiet:
            print(f"Waiting for another process to download {target.name}", file=sys.stderr)

    with durable.lock(record.lock_path(target), waiting=waiting):
        fresh = not target.exists()
        if fresh:
            fetch(url, target, quiet=quiet)
        try:
            return record.check(target, url)
        except IntegrityError:
            if fresh:  # a changed file from the server never stays in the cache
                target.unlink()
            raise


# ----------------------------------------------------------------------------- official
def download_checkpoint(url: str, folder: str | os.PathLike) -> pathlib.Path:
    """Downloads the checkpoint file at `url` into `folder` (the `.data` shard of an
    `.index` URL too); the downloader `kclr.zoo.convert` hands to the converter."""
    folder = pathlib.Path(folder)
    name = pathlib.PurePosixPath(urllib.parse.urlparse(url).path).name or "checkpoint"
    path = fetch(url, folder / name)
    if name.endswith(".index"):  # a TF1 prefix: fetch its data shard too
        data = name[: -len(".index")] + ".data-00000-of-00001"
        fetch(url[: -len(".index")] + ".data-00000-of-00001", folder / data)
    return path


def _alternatives(entry) -> str:
    return (
        "Alternatives: set KCLR_OFFICIAL_CHECKPOINT_URL to a mirror with the bucket's layout; "
        f"or download the files with `gsutil cp -r gs://{entry.checkpoint['sources'][0]['path']} .` "
        f"(a Google login) and run `kclr zoo convert --from <folder> --arch {entry.arch_name} "
        "--out DIR`, then `kclr.zoo.load(DIR)`."
    )


def _fetch_source(entry, source, destination, record, quiet) -> dict[str, Any]:
    return {
        name: {"url": url, "sha256": fetch_once(url, destination / name, record, quiet)}
        for name, url in source["urls"].items()
    }


def fetch_official(
    entry,
    destination: str | os.PathLike,
    record: HashRecord,
    base_url: str | None = None,
    quiet: bool = False,
) -> tuple[pathlib.Path, dict[str, Any]]:
    """Downloads the authors' files of a catalog entry into `destination`.

    Sources are tried in the entry's order (anonymous TF1 files first, then e.g. the v1
    zip); a 404, 401/403 or a file that is not what it claims moves on to the next.

    Returns:
        `(folder holding the checkpoint, {"source_url", "files": {name: {url, sha256}}})`.
    """
    destination = pathlib.Path(destination)
    failures = []
    for source in entry.checkpoint_sources(base_url):
        if is_offline() and not all((destination / n).exists() for n in source["urls"]):
            failures.append(f"{next(iter(source['urls'].values()))}: not cached (offline mode)")
            continue
        try:
            files = _fetch_source(entry, source, destination, record, quiet)
        except (NotFoundError, AccessDeniedError, ContentError) as error:
            failures.append(str(error))
            continue
        info = {"source_url": next(iter(source["urls"].values())), "files": files}
        if source.get("archive"):
            archive = destination / next(iter(source["urls"]))
            extracted = destination / "extracted"
            if extracted.exists():
                shutil.rmtree(extracted)
            return safe_extract(archive, extracted), info
        return destination, info
    raise DownloadError(
        f"Could not download the authors' checkpoint of {entry.name!r}:\n- "
        + "\n- ".join(failures)
        + "\n"
        + _alternatives(entry)
    )
