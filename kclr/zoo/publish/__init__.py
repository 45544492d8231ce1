"""`kclr zoo publish`: convert, verify and push catalog models; record them in the lock file.

For each name: the authors' checkpoint is downloaded (sha256 recorded) and converted,
the result is compared with the authors' SavedModel (`kclr.zoo.conversion.compare`, refused above
1e-4), the card is written (reported top-1, source URL, sha256 of the authors' files
and of the weights), and the folder is pushed to `ORG/<name>` with huggingface_hub.
The Hub repo, the pushed commit and the weights' sha256 go into the lock file
(`kclr/zoo/hub_lock.json` by default, `$KCLR_HUB_LOCK` or `--lock`); the catalog reads
it, so `kclr.zoo.load(name)` then takes the pinned Hub copy first.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
from typing import Any

from kclr import durable
from kclr.zoo import catalog
from kclr.zoo.folder import format as io
from kclr.zoo.publish.upload import push
from kclr.zoo.sources import http
from kclr.zoo.sources.cache import cache_dir, hash_record
from kclr.zoo.sources.resolve import convert_official

SAVED_MODEL_FILES = (
    "saved_model.pb",
    "variables/variables.index",
    "variables/variables.data-00000-of-00001",
)


def fetch_saved_model(entry: catalog.CatalogEntry, quiet: bool = False) -> pathlib.Path:
    """Downloads the authors' TF2 SavedModel of `entry` into the cache (sha256 recorded)."""
    folder = cache_dir() / "downloads" / entry.name / "saved_model"
    record = hash_record()
    base = entry.saved_model_url()
    for name in SAVED_MODEL_FILES:
        http.fetch_once(f"{base}/{name}", folder / name, record, quiet=quiet)
    return folder


def write_lock(path: str | os.PathLike, updates: dict[str, dict[str, Any]]) -> pathlib.Path:
    """Merges `updates` into the lock file at `path` (atomically, under an inter-process lock,
    so that two publishing processes keep each other's entries)."""
    path = pathlib.Path(path)
    with durable.lock(path.with_name(f".{path.name}.lock")):
        models = catalog.read_hub_lock(path) if path.is_file() else {}
        models.update(updates)
        data = {"format": catalog.HUB_LOCK_FORMAT, "models": dict(sorted(models.items()))}
        path.parent.mkdir(parents=True, exist_ok=True)
        return durable.atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def publish_one(
    name: str,
    org: str,
    reference: str | os.PathLike | None = None,
    verify: bool = True,
    private: bool = False,
    token: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Converts, verifies and pushes one catalog model; returns its lock entry."""
    entry = catalog.get(name)
    if verify and reference is None:
        reference = fetch_saved_model(entry, quiet=quiet)
    with tempfile.TemporaryDirectory(prefix=f"kclr-publish-{entry.name}-") as work:
        folder = pathlib.Path(work) / entry.name
        convert_official(entry, folder, quiet=quiet, verify_with=reference if verify else None)
        meta = io.read_metadata(folder)
        repo = f"{org}/{entry.name}"
        result = push(folder, repo, private=private, token=token, commit_message=entry.title)
    sha = meta["sha256"][io.WEIGHTS_FILE]
    if not quiet:
        print(f"Published {entry.name} to {repo} at {result['revision']}", file=sys.stderr)
    return {"repo": repo, "revision": result["revision"], "sha256": {io.WEIGHTS_FILE: sha}}


def publish(
    names: list[str],
    org: str,
    lock: str | os.PathLike | None = None,
    reference_root: str | os.PathLike | None = None,
    verify: bool = True,
    private: bool = False,
    token: str | None = None,
    quiet: bool = False,
) -> dict[str, dict[str, Any]]:
    """Publishes catalog models to `ORG/<name>` and records them in the lock file.

    Args:
        names: catalog names.
        org: Hub user or organisation.
        lock: lock file to update (default: the one the catalog reads).
        reference_root: folder holding the authors' SavedModels as `<name>/`; by
            default each is downloaded from the authors' bucket.
        verify: compare with the authors' SavedModel before pushing.
        private: create private repos.
        token: Hub token (default: `HF_TOKEN` / the stored login).
        quiet: no progress output.

    Returns:
        The lock entries written, by name.

    Example:

    ```python
    kclr.zoo.publish.publish(["simclr-r50-1x"], org="kclr")
    ```
    """
    if not names:
        raise ValueError("Name at least one catalog model to publish (see `kclr zoo list`).")
    entries = [catalog.get(n) for n in names]  # unknown names fail before any work
    lock_path = pathlib.Path(lock) if lock is not None else catalog.hub_lock_path()
    written = {}
    for entry in entries:
        reference = None
        if reference_root is not None:
            reference = pathlib.Path(reference_root) / entry.name
            if not (reference / "saved_model.pb").is_file():
                raise FileNotFoundError(
                    f"No SavedModel for {entry.name!r} at {os.fspath(reference)!r} (expected "
                    "saved_model.pb and variables/). Put the authors' SavedModel there, or "
                    "leave --reference-root out to download it."
                )
        written[entry.name] = publish_one(entry.name, org, reference, verify, private, token, quiet)
        write_lock(lock_path, {entry.name: written[entry.name]})  # after each push
    return written
