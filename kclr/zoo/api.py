"""`kclr.zoo.load` / `kclr.zoo.pull`: resolve a name, a Hub repo or a folder to a model."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

from kclr.zoo import catalog, io
from kclr.zoo.download import OfflineError, is_offline

CACHE_ENV = "KCLR_CACHE"


def cache_dir() -> pathlib.Path:
    """kclr's cache: `$KCLR_CACHE`, else `$XDG_CACHE_HOME/kclr`, else `~/.cache/kclr`."""
    if os.environ.get(CACHE_ENV):
        return pathlib.Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "kclr"


def _hub_pins(entry: catalog.CatalogEntry) -> dict[str, str | None]:
    return dict((entry.hub or {}).get("sha256") or {})


def pull(spec: str, quiet: bool = False) -> pathlib.Path:
    """Makes a model available locally and returns its zoo folder.

    Resolution for a catalog name: kclr's cache, then the pinned Hub repo (when the
    model is published), then the authors' checkpoint, downloaded and converted once
    (cached). `hf://owner/repo[@revision]` goes through the Hub cache; a local folder
    is returned as is.

    Example:

    ```python
    folder = kclr.zoo.pull("simclr-r50-1x")
    ```
    """
    from kclr.zoo import hub

    if spec.startswith(hub.HF_PREFIX):
        repo, revision = hub.parse_hf(spec)
        return hub.download(repo, revision)
    if not catalog.is_known(spec):
        path = pathlib.Path(spec)
        if path.exists():
            return hub.resolve_source_folder(path)
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
    return convert_official(entry, cached, quiet=quiet)


def hash_record():
    """The record of the sha256 of every file downloaded from the authors' bucket."""
    from kclr.zoo.download import RECORD_FILE, HashRecord

    return HashRecord(cache_dir() / "downloads" / RECORD_FILE)


def convert_official(
    entry: catalog.CatalogEntry, target: pathlib.Path, quiet: bool = False, verify_with=None
) -> pathlib.Path:
    """Downloads (or reuses) the authors' checkpoint of `entry` and converts it into `target`.

    The converted folder's `metadata.json` records the source URL, the sha256 of each
    downloaded file, what was skipped, and (with `verify_with`, the authors'
    SavedModel folder) the comparison with the authors' forward pass.
    """
    from kclr.zoo import cards, download
    from kclr.zoo.converter import convert

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
    folder, info = download.fetch_official(entry, downloads, hash_record(), quiet=quiet)
    if not quiet:
        print(f"Converting {entry.name} ({entry.arch_name}) to Keras", file=sys.stderr)
    result = convert(
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
        card=None,
    )
    if not quiet:
        for line in [result.report["summary"], *result.report["notes"]]:
            print(line, file=sys.stderr)
    # Replace the generic card with the catalog's card (sha256 of the converted weights filled).
    meta = io.read_metadata(target)
    (target / io.CARD_FILE).write_text(
        cards.render_catalog_card(entry, meta["sha256"][io.WEIGHTS_FILE], meta=meta),
        encoding="utf-8",
    )
    if any(source.get("archive") for source in entry.checkpoint["sources"]):
        shutil.rmtree(downloads / "extracted", ignore_errors=True)
    return target


def load(spec: str | os.PathLike, include_head: bool = False):
    """Loads a pretrained encoder: images (RGB in [0, 1]) -> features.

    Args:
        spec: a catalog name (`"simclr-r50-1x"`, see `kclr zoo list`), a Hub reference
            `"hf://owner/repo[@revision]"`, or a local zoo folder / run directory.
        include_head: return a model whose output is a dict with `features`,
            `projection` (and `logits` if the checkpoint has a supervised head).

    Returns:
        A Keras model. Prepare inputs with `kclr.zoo.preprocess`.

    Loading is safe by construction: only kclr's config schema and HDF5 weight arrays
    are read, the sha256 of the weights is checked against the pinned value and the
    folder's metadata, and nothing from a download is executed.

    Example:

    ```python
    encoder = kclr.zoo.load("simclr-r50-1x")
    features = encoder(kclr.zoo.preprocess(images))  # [B, 2048]
    ```
    """
    spec = os.fspath(spec)
    folder = pull(spec)
    pins = None
    if catalog.is_known(spec):
        entry = catalog.get(spec)
        converted_here = pathlib.Path(folder).parent == cache_dir() / "zoo"
        if entry.hub.get("repo") and not converted_here:  # the Hub copy: check the pinned hash
            pins = _hub_pins(entry)
    return io.load_folder(folder, include_head=include_head, pins=pins)
