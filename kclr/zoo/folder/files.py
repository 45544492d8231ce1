"""A zoo folder's files: their names, the destination check, and checking their sha256.

`kclr.zoo.folder.format` decides what the files hold (the config schema, the weights' layout,
the metadata) and writes a folder with `kclr.durable.staged_folder` (built next to its
destination, moved into place at the end); this module checks a folder's files against
`metadata.json` and pins.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from kclr.durable import atomic_write_text
from kclr.zoo.folder.safety import IntegrityError, sha256_of, verify_sha256

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE, CARD_FILE)


class ZooFormatError(ValueError):
    """A zoo folder or its config does not follow kclr's schema."""


# ----------------------------------------------------------------------------- writing
def check_destination(directory: pathlib.Path) -> None:
    """Refuses a destination that exists, is not empty and is not a kclr zoo folder."""
    if directory.exists() and any(directory.iterdir()):
        if not (directory / CONFIG_FILE).exists() or not set(
            p.name for p in directory.iterdir()
        ) <= set(FILES):
            raise FileExistsError(
                f"Refusing to overwrite {os.fspath(directory)!r}: it exists and is not a kclr "
                f"zoo folder (expected only {', '.join(FILES)}). Choose an empty or new folder."
            )


def write_json(path: pathlib.Path, data: Any) -> None:
    """Writes `data` as indented JSON with a final newline (atomically)."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def sha256_table(directory: pathlib.Path) -> dict[str, str]:
    """The `sha256` table of `metadata.json`: the weight and config files' hashes."""
    return {
        WEIGHTS_FILE: sha256_of(directory / WEIGHTS_FILE),
        CONFIG_FILE: sha256_of(directory / CONFIG_FILE),
    }


def find_folder(source: str | os.PathLike) -> pathlib.Path:
    """A zoo folder from a run directory (`RUN_DIR/export/`) or a zoo folder itself."""
    path = pathlib.Path(source)
    for candidate in (path, path / "export"):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise FileNotFoundError(
        f"{os.fspath(source)!r} is neither a kclr zoo folder nor a run directory with an "
        "export/ folder. Export a model with `kclr.zoo.save(encoder, DIR)` (fit does it into "
        "RUN_DIR/export/) and use that."
    )


# ----------------------------------------------------------------------------- checking
def read_json(path: pathlib.Path) -> Any:
    """The JSON document in `path`, or a `ZooFormatError` naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ZooFormatError(f"{os.fspath(path)!r} is not valid JSON: {error}.") from error


def read_metadata(directory: str | os.PathLike) -> dict[str, Any]:
    """Reads a zoo folder's `metadata.json`, which must hold the `sha256` table."""
    path = pathlib.Path(directory) / METADATA_FILE
    if not path.is_file():
        raise ZooFormatError(
            f"{os.fspath(directory)!r} has no {METADATA_FILE}: kclr cannot check the weights' "
            "sha256. Re-export it with `kclr.zoo.save`."
        )
    meta = read_json(path)
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), dict):
        raise ZooFormatError(f"{os.fspath(path)!r} lacks the 'sha256' table of the weight files.")
    return meta


def verify_folder(directory: str | os.PathLike, pins: dict[str, str | None] | None = None) -> dict:
    """Checks the folder's files against pinned sha256 values and its own metadata.

    `pins` (from the catalog or the caller) take precedence; the hashes recorded in
    `metadata.json` are checked too. Raises `IntegrityError` naming the file and both
    hashes on a mismatch. Returns the metadata.
    """
    directory = pathlib.Path(directory)
    meta = read_metadata(directory)
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        path = directory / name
        if not path.is_file():
            raise ZooFormatError(f"{os.fspath(directory)!r} is missing {name}.")
        pinned = (pins or {}).get(name)
        actual = verify_sha256(path, pinned)
        recorded = meta["sha256"].get(name)
        if recorded is None and name == WEIGHTS_FILE:
            raise IntegrityError(
                f"{METADATA_FILE} in {os.fspath(directory)!r} has no sha256 for {name}."
            )
        if recorded is not None and recorded != actual:
            raise IntegrityError(
                f"Refusing {os.fspath(path)!r}: its sha256 is {actual} but {METADATA_FILE} "
                f"records {recorded}. The file was modified after export; re-download or "
                "re-export it."
            )
    return meta
