"""One process of `test_concurrent_cache`: wait for the start file, `kclr.zoo.load` a catalog name,
save its features for fixed images.

Usage: `python cold_load_worker.py NAME START_FILE OUT.npy`. The catalog is shrunk to 1/8 width as
the `small_catalog` fixture does, so the loopback bucket's small checkpoint fits the entry.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import time

import numpy as np


def main(name: str, start: pathlib.Path, out: pathlib.Path) -> None:
    import keras  # noqa: F401 - imported before the start, so the loads begin together

    import kclr
    from kclr.zoo import catalog

    real = catalog._load
    catalog._load = lambda: {
        key: dataclasses.replace(entry, arch={**entry.arch, "width_multiplier": 0.125})
        for key, entry in real().items()
    }
    images = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
    while not start.exists():  # every process is ready (TensorFlow imported): go together
        time.sleep(0.01)
    encoder = kclr.zoo.load(name)
    np.save(out, np.asarray(encoder(images)))


if __name__ == "__main__":
    main(sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]))
