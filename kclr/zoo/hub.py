"""Hugging Face Hub transport for zoo folders (huggingface_hub is imported here only, lazily)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import tempfile
from typing import Any

from kclr.zoo import io

HF_PREFIX = "hf://"
_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def parse_hf(spec: str) -> tuple[str, str | None]:
    """`"hf://owner/repo@rev"` -> `("owner/repo", "rev")`."""
    body = spec[len(HF_PREFIX) :] if spec.startswith(HF_PREFIX) else spec
    repo, _, revision = body.partition("@")
    if not _REPO_RE.match(repo):
        raise ValueError(
            f"Invalid Hub reference {spec!r}. Expected 'hf://owner/name' or "
            "'hf://owner/name@revision' (a branch, tag or commit hash)."
        )
    return repo, revision or None


def hub_cache_dir() -> str | None:
    """The Hub cache from the environment at call time (huggingface_hub reads it at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def download(repo: str, revision: str | None = None, cache_dir: str | None = None) -> pathlib.Path:
    """Downloads (or finds in the Hub cache) the zoo files of a Hub repo; returns the folder."""
    import huggingface_hub
    from huggingface_hub import errors

    from kclr.zoo.download import OfflineError, is_offline

    try:
        folder = huggingface_hub.snapshot_download(
            repo_id=repo,
            revision=revision,
            allow_patterns=list(io.FILES),
            cache_dir=cache_dir or hub_cache_dir(),
            local_files_only=is_offline(),
            endpoint=os.environ.get("HF_ENDPOINT") or None,
        )
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled) as error:
        where = f"{repo}@{revision}" if revision else repo
        raise OfflineError(
            f"hf://{where} is not in the local Hub cache and downloading is not possible "
            f"({type(error).__name__}). On a machine with network access run "
            f"`kclr zoo pull hf://{where}` (or `huggingface-cli download {repo}`) and copy the "
            "Hub cache (HF_HOME), or unset HF_HUB_OFFLINE."
        ) from error
    except errors.RepositoryNotFoundError as error:
        raise FileNotFoundError(
            f"Hub repository {repo!r} was not found (or is private: log in with "
            "`huggingface-cli login` or set HF_TOKEN)."
        ) from error
    except errors.RevisionNotFoundError as error:
        raise FileNotFoundError(f"Revision {revision!r} does not exist in {repo!r}.") from error
    return pathlib.Path(folder)


def resolve_source_folder(source: str | os.PathLike) -> pathlib.Path:
    """A zoo folder from a run directory (`RUN_DIR/export/`) or a zoo folder itself."""
    path = pathlib.Path(source)
    for candidate in (path, path / "export"):
        if (candidate / io.CONFIG_FILE).is_file():
            return candidate
    raise FileNotFoundError(
        f"{os.fspath(source)!r} is neither a kclr zoo folder nor a run directory with an "
        "export/ folder. Export a model with `kclr.zoo.save(encoder, DIR)` (fit does it into "
        "RUN_DIR/export/) and push that."
    )


def prepare_upload(
    source: str | os.PathLike, destination: str | os.PathLike, repo: str | None = None
) -> pathlib.Path:
    """Builds the exact folder `push` uploads: verified files plus a Hub model card.

    The weights and config are checked against `metadata.json` first; the README gets
    Hub metadata (library name, tags, datasets, metrics, license, pipeline tag).
    """
    from kclr.zoo import cards, catalog

    folder = resolve_source_folder(source)
    io.read_config(folder)
    meta = io.verify_folder(folder)
    destination = pathlib.Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    for name in (io.CONFIG_FILE, io.WEIGHTS_FILE):
        shutil.copy2(folder / name, destination / name)
    meta = {**meta, **({"repo": repo} if repo else {})}
    (destination / io.METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    name = meta.get("catalog_name")
    if name and catalog.is_known(name):
        card = cards.render_catalog_card(
            catalog.get(name), meta["sha256"][io.WEIGHTS_FILE], meta=meta
        )
    else:
        card = cards.render_folder_card(io.read_config(folder), meta)
    (destination / io.CARD_FILE).write_text(card, encoding="utf-8")
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
