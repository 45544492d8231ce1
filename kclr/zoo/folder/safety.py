"""Integrity checks for downloaded files: sha256 pins and archive extraction."""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import tarfile
import zipfile


class IntegrityError(RuntimeError):
    """A file does not match its pinned sha256, or an archive is unsafe."""


def sha256_of(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str | None) -> str:
    """Checks `path` against a pinned sha256 (skipped when `expected` is None).

    Returns the actual hash. Raises `IntegrityError` naming the file and both hashes.
    """
    actual = sha256_of(path)
    if expected is not None and actual.lower() != expected.lower():
        raise IntegrityError(
            f"Refusing {os.fspath(path)!r}: its sha256 is {actual} but {expected} was "
            "expected. The file was modified or the download is corrupt. Delete it and "
            "download it again; if it keeps happening, do not use this copy."
        )
    return actual


def _check_member(name: str, target: pathlib.Path) -> pathlib.Path:
    member = pathlib.PurePosixPath(name.replace("\\", "/"))
    if member.is_absolute() or ".." in member.parts or (member.parts and ":" in member.parts[0]):
        raise IntegrityError(
            f"Refusing archive member {name!r}: it would be written outside the target "
            f"folder {os.fspath(target)!r}. The archive is malformed or malicious."
        )
    destination = (target / member).resolve()
    if destination != target and target not in destination.parents:
        raise IntegrityError(
            f"Refusing archive member {name!r}: it resolves to {os.fspath(destination)!r}, "
            f"outside the target folder {os.fspath(target)!r}."
        )
    return destination


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> pathlib.Path:
    """Extracts a zip or tar archive into `target`, refusing members that escape it.

    Absolute paths, `..` components, links and device files are refused before
    anything is written.
    """
    archive = pathlib.Path(archive)
    target = pathlib.Path(target).resolve()
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as handle:
            infos = handle.infolist()
            for info in infos:
                _check_member(info.filename, target)
                mode = (info.external_attr >> 16) & 0o170000
                if mode == 0o120000:  # symlink
                    raise IntegrityError(
                        f"Refusing archive member {info.filename!r}: symbolic links are not allowed."
                    )
            for info in infos:
                destination = _check_member(info.filename, target)
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with handle.open(info) as source, open(destination, "wb") as sink:
                    shutil.copyfileobj(source, sink)
        return target
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as handle:
            members = handle.getmembers()
            for member in members:
                _check_member(member.name, target)
                if not (member.isfile() or member.isdir()):
                    raise IntegrityError(
                        f"Refusing archive member {member.name!r}: only regular files and "
                        "folders are allowed (no links or devices)."
                    )
            for member in members:
                destination = _check_member(member.name, target)
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = handle.extractfile(member)
                assert source is not None
                with source, open(destination, "wb") as sink:
                    shutil.copyfileobj(source, sink)
        return target
    raise IntegrityError(
        f"{os.fspath(archive)!r} is neither a zip nor a tar archive; expected the authors' "
        "checkpoint archive (.zip) or a .tar/.tar.gz."
    )
