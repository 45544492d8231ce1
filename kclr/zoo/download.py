"""Downloads of the authors' checkpoints (plain HTTPS, standard library only)."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from kclr.zoo.safety import safe_extract, verify_sha256


class OfflineError(RuntimeError):
    """A download is needed but the network is off or unreachable."""


def is_offline() -> bool:
    """True when `HF_HUB_OFFLINE` or `KCLR_OFFLINE` is set to a true value."""
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "KCLR_OFFLINE")
    )


def is_url(spec: str | os.PathLike) -> bool:
    return isinstance(spec, str) and spec.split("://", 1)[0] in {"http", "https"}


def fetch(
    url: str, destination: str | os.PathLike, sha256: str | None = None, quiet: bool = False
) -> pathlib.Path:
    """Downloads `url` to `destination` (via a temporary file) and checks its sha256."""
    destination = pathlib.Path(destination)
    if is_offline():
        raise OfflineError(
            f"Offline mode is on (HF_HUB_OFFLINE/KCLR_OFFLINE) and {url} is not cached. "
            f"Download it on a machine with network access and pass the file to "
            "`kclr zoo convert --from FILE`, or unset the offline variables."
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as sink:  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 20):
                sink.write(chunk)
                done += len(chunk)
                if not quiet and total > (8 << 20):
                    print(
                        f"\r{destination.name}: {done >> 20}/{total >> 20} MiB",
                        end="",
                        file=sys.stderr,
                    )
            if not quiet and total > (8 << 20):
                print(file=sys.stderr)
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise OfflineError(
            f"Could not download {url}: {error}. Check the network (or set "
            "KCLR_OFFICIAL_CHECKPOINT_URL to a mirror of the authors' bucket), or download "
            "the file yourself and run `kclr zoo convert --from FILE --arch ... --out DIR`."
        ) from error
    try:
        verify_sha256(partial, sha256)
    except Exception:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(destination)
    return destination


def _is_archive(path: pathlib.Path) -> bool:
    return path.is_file() and (zipfile.is_zipfile(path) or tarfile.is_tarfile(path))


def materialize(spec: str | os.PathLike, scratch: str | os.PathLike) -> str:
    """Turns a URL / archive / path into a local path a checkpoint reader can open."""
    scratch = pathlib.Path(scratch)
    path = pathlib.Path(spec) if not is_url(spec) else None
    if path is None:
        name = pathlib.PurePosixPath(urllib.parse.urlparse(str(spec)).path).name or "checkpoint"
        path = fetch(str(spec), scratch / "download" / name)
        if name.endswith(".index"):  # a TF1 prefix: fetch its data shard too
            data_url = str(spec)[: -len(".index")] + ".data-00000-of-00001"
            fetch(
                data_url, scratch / "download" / (name[: -len(".index")] + ".data-00000-of-00001")
            )
    if _is_archive(path):
        return os.fspath(safe_extract(path, scratch / "extracted"))
    if not path.exists() and not pathlib.Path(f"{path}.index").exists():
        raise FileNotFoundError(
            f"Checkpoint {os.fspath(spec)!r} does not exist. Pass a checkpoint prefix, a folder, "
            "a SavedModel folder, an archive or an http(s) URL."
        )
    return os.fspath(path)


def fetch_official(
    entry, destination: str | os.PathLike, base_url: str | None = None
) -> pathlib.Path:
    """Downloads the authors' files of a catalog entry into `destination` (checked, resumable).

    Returns the folder holding the checkpoint (archives are extracted safely).
    """
    destination = pathlib.Path(destination)
    pins = entry.checkpoint.get("sha256") or {}
    for name, url in entry.checkpoint_urls(base_url).items():
        target = destination / name
        if target.exists():
            verify_sha256(target, pins.get(name))
            continue
        fetch(url, target, pins.get(name))
    if entry.checkpoint.get("archive"):
        archive = destination / entry.checkpoint["files"][0]
        extracted = destination / "extracted"
        if extracted.exists():
            shutil.rmtree(extracted)
        return safe_extract(archive, extracted)
    return destination
