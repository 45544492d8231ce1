"""Four processes load the same catalog name from a cold cache at once (a cluster's first day).

The authors' bucket is mirrored on loopback (`KCLR_OFFICIAL_CHECKPOINT_URL`); each process is a
real `python` running `kclr.zoo.load`, started together once TensorFlow is imported.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
from bucket_server import BucketServer
from test_official import V1, WIDTH, _checkpoint_files
from zoo_checkpoints import random_arrays, reference_forward, scale_shapes

NAME = "simclr-r50-1x"
WORKERS = 4
WORKER = pathlib.Path(__file__).with_name("cold_load_worker.py")


def test_four_processes_share_one_cold_cache(zoo_env, r50_tf1_shapes):
    """All four succeed with identical features; every file is downloaded once and its sha256
    is in the record; the conversion runs once.

    How the test knows: the loopback bucket counts the GET requests per file (one each, so
    no process downloaded a file another one was downloading), and kclr prints
    "Converting <name>" to stderr each time it converts the authors' checkpoint: that line
    appears in exactly one of the four outputs, and the other processes say that they waited.
    """
    shapes = {k: v for k, v in scale_shapes(r50_tf1_shapes, WIDTH).items() if "base_model/" in k}
    arrays = random_arrays(shapes, seed=7)
    files = _checkpoint_files(zoo_env, dict(arrays, global_step=np.array(225206, np.int64)), 225206)
    start = zoo_env / "start"
    env = {
        **os.environ,
        "KCLR_CACHE": str(zoo_env / "kclr-cache"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
    }
    with BucketServer() as bucket:
        for suffix, data in files.items():
            bucket.files[V1 + suffix] = data
        env["KCLR_OFFICIAL_CHECKPOINT_URL"] = bucket.url
        logs = [open(zoo_env / f"worker-{i}.log", "w+") for i in range(WORKERS)]  # noqa: SIM115
        workers = [
            subprocess.Popen(
                [sys.executable, str(WORKER), NAME, str(start), str(zoo_env / f"features-{i}.npy")],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=WORKER.parent,
            )  # fmt: skip
            for i, log in enumerate(logs)
        ]
        start.touch()
        codes = [worker.wait(timeout=240) for worker in workers]
        outputs = [pathlib.Path(log.name).read_text() for log in logs]
        for log in logs:
            log.close()
        requests = collections.Counter(path for path, _ in bucket.requests)

    assert codes == [0] * WORKERS, "\n----\n".join(outputs)
    assert requests == {V1 + suffix: 1 for suffix in files}  # one download per file
    converting = [out.count(f"Converting {NAME} ") for out in outputs]
    assert sorted(converting) == [0] * (WORKERS - 1) + [1], outputs  # converted once
    waited = sum(f"Waiting for another process to convert {NAME}" in out for out in outputs)
    assert waited >= 1, outputs  # the processes did meet at the lock

    features = [np.load(zoo_env / f"features-{i}.npy") for i in range(WORKERS)]
    for other in features[1:]:
        np.testing.assert_array_equal(other, features[0])
    images = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(features[0], reference_forward(arrays, images), rtol=2e-4, atol=2e-4)

    record = json.loads((zoo_env / "kclr-cache" / "downloads" / "sha256.json").read_text())
    assert record == {
        bucket.url + V1 + suffix: hashlib.sha256(data).hexdigest() for suffix, data in files.items()
    }
    converted = zoo_env / "kclr-cache" / "zoo" / NAME
    meta = json.loads((converted / "metadata.json").read_text())
    assert {item["sha256"] for item in meta["source"]["files"].values()} == set(record.values())
