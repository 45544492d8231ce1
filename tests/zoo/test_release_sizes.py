"""Every released architecture builds with the authors' parameter count (ResNet-152 3x SK: 795M)."""

from __future__ import annotations

import numpy as np
import pytest

from kclr.models import ResNet
from kclr.zoo import catalog

BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def expected_parameters(depth: int, width: float, sk: bool) -> int:
    """Trainable parameters of the authors' encoder, from its layer shapes alone.

    Written from the authors' `resnet.py`: convolutions without bias (k*k*in*out), BatchNorm
    gamma and beta; SK: 3x3 conv to 2f, BN, 1x1 conv to max(int(f/16), 32), BN, 1x1 to 2f;
    ResNet-D stem 3x3 (32w, 32w, 64w) and average-pool shortcut.
    """

    def s(channels: int) -> int:
        return max(1, int(round(channels * width)))

    def conv(k: int, cin: int, cout: int) -> int:
        return k * k * cin * cout

    def bn(channels: int) -> int:
        return 2 * channels

    if sk:
        total = conv(3, 3, s(32)) + bn(s(32)) + conv(3, s(32), s(32)) + bn(s(32))
        total += conv(3, s(32), s(64)) + bn(s(64))
    else:
        total = conv(7, 3, s(64)) + bn(s(64))
    cin = s(64)
    for filters, count in zip((64, 128, 256, 512), BLOCKS[depth], strict=True):
        f = s(filters)
        for block in range(count):
            if block == 0:
                total += conv(1, cin, 4 * f) + bn(4 * f)
            total += conv(1, cin, f) + bn(f)
            if sk:
                mid = max(int(f * 0.0625), 32)
                total += conv(3, f, 2 * f) + bn(2 * f) + conv(1, f, mid) + bn(mid)
                total += conv(1, mid, 2 * f)
            else:
                total += conv(3, f, f) + bn(f)
            total += conv(1, f, 4 * f) + bn(4 * f)
            cin = 4 * f
    return total


def test_formula_reproduces_the_authors_measured_counts():
    # The reference's parameter table (measured by running the authors' code).
    assert expected_parameters(50, 1, False) == 23_508_032
    assert expected_parameters(50, 2, False) == 93_907_072
    assert expected_parameters(50, 4, False) == 375_378_176
    assert expected_parameters(50, 1, True) == 35_215_584
    assert expected_parameters(50, 2, True) == 140_306_048


def test_resnet152_3x_sk_is_795m():
    assert expected_parameters(152, 3, True) == 794_704_160  # the README's "795M"
    assert catalog.get("simclrv2-r152-3x-sk1").arch == {
        "depth": 152,
        "width_multiplier": 3,
        "sk_ratio": 0.0625,
    }


@pytest.mark.parametrize("depth, sk", [(152, True), (101, False)])
def test_thin_copies_build_with_the_expected_count(depth, sk):
    """kclr's model has exactly the formula's count at a width cheap enough to build."""
    model = ResNet(depth, 0.0625, sk_ratio=0.0625 if sk else 0.0, sync_bn=False)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == expected_parameters(depth, 0.0625, sk)


@pytest.mark.slow
def test_resnet152_3x_sk_builds_full_size():
    model = ResNet(152, 3, sk_ratio=0.0625, sync_bn=False)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 794_704_160
    assert model.output.shape[-1] == 6144
