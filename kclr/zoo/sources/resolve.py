"""One resolver: a catalog name, `hf://owner/repo[@revision]`, an https URL or a local folder
-> a local zoo folder.

Every entry point (`kclr.zoo.load`, `kclr.zoo.pull`, `kclr.zoo.verify`, the `kclr zoo` commands)
goes through `resolve`. Resolution for a catalog name: kclr's cache, then the pinned Hub repo
(when the model is published), then the authors' checkpoint, downloaded and converted once
(cached). An `hf://` reference goes through the Hub cache. An http(s) URL names a folder on a
web server holding the zoo files; they are downloaded once into kclr's cache. A local zoo
folder (or a run directory with `export/`) is returned as is.

Several processes may resolve the same name from a cold cache at once: the conversion
into `zoo/<name>/` (and a URL folder's download) runs under a lock per model
(`zoo/.<name>.lock`), so one process does it and the others wait, then read its result.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import sys

from kclr import durable
from kclr.zoo import catalog
from kclr.zoo.catalog import cards
from kclr.zoo.conversion.converter import DamagedCheckpointError, convert
from kclr.zoo.folder import format as io
from kclr.zoo.folder.files import find_folder
from kclr.zoo.sources import http, hub
from kclr.zoo.sources.cache import cache_dir, hash_record
from kclr.zoo.sources.http import OfflineError, is_offline

URL_FILES = (io.CONFIG_FILE, io.WEIGHTS_FILE, io.METADATA_FILE)
"""The files fetched from a zoo folder URL (the model card is optional)."""


def hub_pins(entry: catalog.CatalogEntry) -> dict[str, str | None]:
    """The sha256 values the catalog pins for the Hub copy of `entry`."""
    return dict((entry.hub or {}).get("sha256") or {})


def resolve(spec: str | os.PathLike, quiet: bool = False) -> pathlib.Path:
    """The local zoo folder of `spec`, downloading or converting it when needed.

    Args:
        spec: a catalog name (`"simclr-r50-1x"`), `"hf://owner/repo[@revision]"`, an
            `https://` URL of a folder holding `config.json`, `model.weights.h5` and
            `metadata.json`, or a local zoo folder / run directory.
        quiet: no progress messages on stderr.

    Raises:
        UnknownModelError: `spec` is no catalog name, URL, Hub reference or existing path
            (the closest catalog names are suggested).
    """
    spec = os.fspath(spec)
    if spec.startswith(hub.HF_PREFIX):
        repo, revision = hub.parse_hf(spec)
        return hub.download(repo, revision)
    if http.is_url(spec):
        return from_url(spec, quiet=quiet)
    if not catalog.is_known(spec):
        path = pathlib.Path(spec)
        if path.exists():
            return find_folder(path)
        catalog.get(spec)  # raises UnknownModelError with suggestions
    entry = catalog.get(spec)
    cached = cache_dir() / "zoo" / entry.name
    if (cached / io.CONFIG_FILE).is_file():
        return cached
    if entry.hub.get("repo"):
        try:
            return hub.download(entry.hub["repo"], entry.hub.get("revision"))
        except OfflineError as error:
            if is_offline():
                raise
            if not quiet:
                print(
                    f"Hub unreachable ({error}); converting the authors' checkpoint.",
                    file=sys.stderr,
                )
        except Exception as error:  # noqa: BLE001 - fall back to the authors' checkpoint
            if not quiet:
                print(
                    f"Hub download failed ({error}); converting the authors' checkpoint.",
                    file=sys.stderr,
                )
    return _convert_once(entry, cached, quiet)


def _waiting(what: str, quiet: bool):
    def say() -> None:
        if not quiet:
            print(f"Waiting for another process to {what}", file=sys.stderr)

    return say


def _convert_once(entry: catalog.CatalogEntry, cached: pathlib.Path, quiet: bool) -> pathlib.Path:
    """`convert_official` into the cache, once however many processes ask at the same time."""
    lock = cached.with_name(f".{cached.name}.lock")
    with durable.lock(lock, waiting=_waiting(f"convert {entry.name}", quiet)):
        if (cached / io.CONFIG_FILE).is_file():  # converted while this process waited
            return cached
        return convert_official(entry, cached, quiet=quiet)


def pins_for(spec: str | os.PathLike, folder: pathlib.Path) -> dict[str, str | None] | None:
    """The pinned sha256 values that `folder` (resolved from `spec`) must match, if any.

    Only a catalog model's Hub copy has pins; a copy converted here is checked against
    its own metadata.
    """
    spec = os.fspath(spec)
    if not catalog.is_known(spec):
        return None
    entry = catalog.get(spec)
    converted_here = pathlib.Path(folder).parent == cache_dir() / "zoo"
    if entry.hub.get("repo") and not converted_here:
        return hub_pins(entry)
    return None


def from_url(url: str, quiet: bool = False) -> pathlib.Path:
    """Downloads the zoo files under `url` (once) into `cache_dir()/urls/<hash>/`."""
    base = url.rstrip("/")
    folder = cache_dir() / "urls" / hashlib.sha256(base.encode("utf-8")).hexdigest()[:16]
    if (folder / io.CONFIG_FILE).is_file():
        return folder
    if is_offline():
        raise OfflineError(
            f"{url} is not cached and offline mode is on (HF_HUB_OFFLINE=1 or KCLR_OFFLINE=1). "
            f"Run `kclr zoo pull {url}` once with network access (cache: {cache_dir()})."
        )
    lock = folder.with_name(f".{folder.name}.lock")
    with durable.lock(lock, waiting=_waiting(f"download {url}", quiet)):
        if (folder / io.CONFIG_FILE).is_file():  # downloaded while this process waited
            return folder
        with durable.staged_folder(folder) as staging:
            for name in URL_FILES:
                http.fetch(f"{base}/{name}", staging / name, quiet=quiet)
            try:
                http.fetch(f"{base}/{io.CARD_FILE}", staging / io.CARD_FILE, quiet=quiet)
            except http.NotFoundError:
                pass
    return folder


def convert_official(
    entry: catalog.CatalogEntry, target: pathlib.Path, quiet: bool = False, verify_with=None
) -> pathlib.Path:
    """Downloads (or reuses) the authors' checkpoint of `entry` and converts it into `target`.

    The converted folder's `metadata.json` records the source URL, the sha256 of each
    downloaded file, what was skipped, and (with `verify_with`, the authors'
    SavedModel folder) the comparison with the authors' forward pass.
    """
    downloads = cache_dir() / "downloads" / entry.name
    have = any(
        all((downloads / name).exists() for name in source["urls"])
        for source in entry.checkpoint_sources()
    )
    if is_offline() and not have:
        urls = "\n  ".join(entry.checkpoint_urls().values())
        raise OfflineError(
            f"{entry.name!r} is not cached and offline mode is on (HF_HUB_OFFLINE=1 or "
            f"KCLR_OFFLINE=1), so kclr cannot download it. Either run `kclr zoo pull "
            f"{entry.name}` once with network access (cache: {cache_dir()}), or download the "
            f"authors' checkpoint:\n  {urls}\nthen run `kclr zoo convert --from <downloaded "
            f"file or folder> --arch {entry.arch_name} --out DIR` and load DIR with "
            "`kclr.zoo.load(DIR)`."
        )
    if not quiet:
        print(f"Fetching the authors' checkpoint of {entry.name} into {downloads}", file=sys.stderr)
    record = hash_record()
    folder, info = http.fetch_official(entry, downloads, record, quiet=quiet)
    if not quiet:
        print(f"Converting {entry.name} ({entry.arch_name}) to Keras", file=sys.stderr)
    try:
        result = _convert(entry, folder, info, target, verify_with)
    except DamagedCheckpointError as error:  # a truncated download never stays in the cache
        for name in info["files"]:
            (downloads / name).unlink(missing_ok=True)
        record.forget([item["url"] for item in info["files"].values()])
        raise DamagedCheckpointError(
            f"{error}\nThe downloaded files of {entry.name} ({', '.join(info['files'])}) were "
            f"removed from {downloads} and their lines from {record.path}: run the same command "
            "again to download them afresh; if it happens again, the server's copy is damaged: "
            "set KCLR_OFFICIAL_CHECKPOINT_URL to a mirror of the authors' bucket."
        ) from error
    if not quiet:
        for line in [result.report["summary"], *result.report["notes"]]:
            print(line, file=sys.stderr)
    if any(source.get("archive") for source in entry.checkpoint["sources"]):
        shutil.rmtree(downloads / "extracted", ignore_errors=True)
    return target


def _convert(entry, folder, info, target, verify_with):
    """Converts the downloaded checkpoint of `entry` into `target` with the catalog's card."""
    return convert(
        folder,
        entry.arch,
        out=target,
        ft_proj_selector=entry.ft_proj_selector,
        verify=verify_with is not None,
        reference=verify_with,
        metadata={
            "catalog_name": entry.name,
            "license": entry.license,
            "datasets": [entry.dataset],
            "source": info,
        },
        card=lambda config, meta: cards.render_catalog_card(
            entry, meta["sha256"][io.WEIGHTS_FILE], meta=meta
        ),
    )
