"""Hugging Face Hub download of zoo folders (huggingface_hub is imported lazily).

Uploading lives in `kclr.zoo.publish.push`.
"""

from __future__ import annotations

import os
import pathlib
import re

from kclr.zoo.folder.files import FILES
from kclr.zoo.sources.http import OfflineError, is_offline

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

    try:
        folder = huggingface_hub.snapshot_download(
            repo_id=repo,
            revision=revision,
            allow_patterns=list(FILES),
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
