"""Safety: pinned hashes, archive members that escape, unknown config fields, no code."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile

import pytest

import kclr
from kclr.models import ResNet
from kclr.zoo.folder.format import ZooFormatError, load_folder
from kclr.zoo.folder.safety import IntegrityError, safe_extract, sha256_of


@pytest.fixture
def folder(tmp_path):
    encoder = ResNet(18, 0.25, cifar_stem=True, input_shape=(None, None, 3))
    return kclr.zoo.save(encoder, tmp_path / "model")


def test_tampered_weights_are_refused_naming_file_and_hashes(folder):
    original = sha256_of(folder / "model.weights.h5")
    data = bytearray((folder / "model.weights.h5").read_bytes())
    data[-100] ^= 0xFF
    (folder / "model.weights.h5").write_bytes(bytes(data))
    tampered = sha256_of(folder / "model.weights.h5")
    with pytest.raises(IntegrityError) as info:
        kclr.zoo.load(folder)
    message = str(info.value)
    assert "model.weights.h5" in message and original in message and tampered in message


def test_pinned_hash_wins_over_metadata(folder):
    actual = sha256_of(folder / "model.weights.h5")
    load_folder(folder, pins={"model.weights.h5": actual})
    with pytest.raises(IntegrityError, match=f"sha256 is {actual} but {'a' * 64} was expected"):
        load_folder(folder, pins={"model.weights.h5": "a" * 64})


def test_tampered_config_is_refused(folder):
    config = json.loads((folder / "config.json").read_text())
    config["encoder"]["config"]["width_multiplier"] = 0.5
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(IntegrityError, match="config.json"):
        kclr.zoo.load(folder)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(custom_objects={"x": 1}), r"unknown field\(s\) \['custom_objects'\]"),
        (
            lambda c: c["encoder"]["config"].update(module="os"),
            r"Unknown argument `encoder.config.module` for encoder 'resnet'",
        ),
        (
            lambda c: c["encoder"].update(name="builtins.eval"),
            r"Unknown encoder `encoder.name='builtins.eval'`",
        ),
        (
            lambda c: c["encoder"]["config"].update(depth={"class_name": "Lambda"}),
            "must be a number, string",
        ),
        (
            lambda c: c.update(projection_head={"version": "v2", "activation": "lambda"}),
            r"'projection_head' must be \{'name': <registered head>",
        ),
        (lambda c: c.update(format="keras"), "format 'keras' is not supported"),
    ],
)
def test_configs_with_unknown_fields_are_refused(folder, edit, message):
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    meta = json.loads((folder / "metadata.json").read_text())
    meta["sha256"]["config.json"] = sha256_of(folder / "config.json")  # a consistent forgery
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ZooFormatError, match=message):
        kclr.zoo.load(folder)


@pytest.mark.parametrize("name", ["config.json", "metadata.json"])
def test_truncated_json_names_the_file(folder, name):
    from kclr.zoo.folder.files import read_metadata
    from kclr.zoo.folder.format import read_config

    text = (folder / name).read_text()
    (folder / name).write_text(text[: len(text) // 2])
    read = read_config if name == "config.json" else read_metadata
    with pytest.raises(ZooFormatError, match=f"{name}' is not valid JSON"):
        read(folder)


def test_zip_member_escaping_target_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("ok/model.ckpt-1.index", b"x")
        handle.writestr("../escaped.txt", b"pwned")
    target = tmp_path / "out"
    with pytest.raises(IntegrityError, match=r"Refusing archive member '\.\./escaped\.txt'"):
        safe_extract(archive, target)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (target / "ok").exists()  # nothing is written before every member is checked


@pytest.mark.parametrize("kind", ["absolute", "symlink"])
def test_tar_escapes_are_refused(tmp_path, kind):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as handle:
        if kind == "absolute":
            info = tarfile.TarInfo("/kclr-escaped.txt")
            info.size = 5
            handle.addfile(info, io.BytesIO(b"pwned"))
        else:
            info = tarfile.TarInfo("link")
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            handle.addfile(info)
    with pytest.raises(IntegrityError, match="Refusing archive member"):
        safe_extract(archive, tmp_path / "out")


def test_checkpoint_archive_with_escape_is_refused_by_convert(tmp_path):
    archive = tmp_path / "ckpt.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("../../outside.index", b"x")
    with pytest.raises(IntegrityError):
        kclr.zoo.convert(archive, "r50_1x")


def test_loading_reads_no_pickle_or_code(folder, tmp_path):
    """A folder whose weight file is a pickle is refused before anything is unpickled."""
    import pickle

    class Boom:
        def __reduce__(self):
            return (shutil.rmtree, (str(tmp_path / "victim"),))

    (tmp_path / "victim").mkdir()
    (folder / "model.weights.h5").write_bytes(pickle.dumps(Boom()))
    meta = json.loads((folder / "metadata.json").read_text())
    meta["sha256"]["model.weights.h5"] = sha256_of(folder / "model.weights.h5")
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(Exception):  # noqa: B017 - h5py rejects it; the point is what did not happen
        kclr.zoo.load(folder)
    assert (tmp_path / "victim").exists()
