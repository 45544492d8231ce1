"""Uploading a zoo folder to the Hugging Face Hub (huggingface_hub is imported lazily)."""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from typing import Any

from kclr.durable import atomic_write_text
from kclr.zoo import catalog
from kclr.zoo.catalog import cards
from kclr.zoo.folder import format as io
from kclr.zoo.folder.card import render_folder_card
from kclr.zoo.folder.files import find_folder, write_json
from kclr.zoo.sources.hub import parse_hf


def prepare_upload(
    source: str | os.PathLike, destination: str | os.PathLike, repo: str | None = None
) -> pathlib.Path:
    """Builds the exact folder `push` uploads: verified files plus a Hub model card.

    The weights and config are checked against `metadata.json` first; the README gets
    Hub metadata (library name, tags, datasets, metrics, license, pipeline tag).
    """
    folder = find_folder(source)
    io.read_config(folder)
    meta = io.verify_folder(folder)
    destination = pathlib.Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    for name in (io.CONFIG_FILE, io.WEIGHTS_FILE):
        shutil.copy2(folder / name, destination / name)
    meta = {**meta, **({"repo": repo} if repo else {})}
    write_json(destination / io.METADATA_FILE, meta)
    name = meta.get("catalog_name")
    if name and catalog.is_known(name):
        card = cards.render_catalog_card(
            catalog.get(name), meta["sha256"][io.WEIGHTS_FILE], meta=meta
        )
    else:
        card = render_folder_card(io.read_config(folder), meta)
    atomic_write_text(destination / io.CARD_FILE, card)
    return destination


def push(
    source: str | os.PathLike,
    repo: str,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload kclr model",
) -> dict[str, Any]:
    """Uploads a zoo folder (or RUN_DIR/export) to the Hub, creating the repo if needed.

    Returns `{"repo": ..., "revision": commit hash, "url": ...}`; pin that revision.
    """
    from huggingface_hub import HfApi

    parse_hf(repo)
    api = HfApi(token=token, endpoint=os.environ.get("HF_ENDPOINT") or None)
    with tempfile.TemporaryDirectory(prefix="kclr-push-") as staging:
        folder = prepare_upload(source, staging, repo=repo)
        api.create_repo(repo_id=repo, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            repo_id=repo, folder_path=os.fspath(folder), commit_message=commit_message
        )
    revision = getattr(commit, "oid", None)
    return {"repo": repo, "revision": revision, "url": getattr(commit, "commit_url", None)}
