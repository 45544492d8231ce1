"""Pretrain on the built-in demo data with the Python API, then evaluate with kNN and a linear probe.

Run: python examples/pretrain_demo.py [RUN_DIR]
"""

from __future__ import annotations

import sys

import kclr
from kclr.run import config
from kclr.run import fit as runs


def main(run_dir: str = "runs/demo-example") -> None:
    cfg = config.resolve(
        "demo", overrides=["train.epochs=2"]
    )  # a short run; drop for the full demo
    result = runs.fit(cfg, out=run_dir)
    print("kNN top-1:", result.knn)

    encoder = kclr.zoo.load(str(result.export_dir))
    train = kclr.evaluation.extract_features(encoder, kclr.data.demo.load("train"))
    test = kclr.evaluation.extract_features(encoder, kclr.data.demo.load("test"))
    protocol = kclr.registry.protocols.get(cfg.linear_eval)  # the preset's linear_eval spec
    linear = protocol.run(train, test)
    print(f"linear probe: top-1 {linear['top1']:.1f}%, top-5 {linear['top5']:.1f}%")


if __name__ == "__main__":
    main(*sys.argv[1:])
