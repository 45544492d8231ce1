"""The demo's network, head and loss written in PyTorch: the peer the CPU benchmarks time.

`ResNet` mirrors `kclr.models.ResNet` for basic-block depths (18, 34): the same stems
(ImageNet 7x7/2 + 3x3/2 max-pool, or the CIFAR 3x3/1 stem), the same channel counts at
any width multiplier, projection shortcuts (1x1 conv + BN) where the shape changes,
post-activation blocks, BatchNorm momentum 0.9 / epsilon 1e-5, global average pooling.
`ProjectionHead` is SimCLR v1's (Dense without bias + BN + ReLU, then Dense + BN without
centre), and `nt_xent` the SimCLR loss at one temperature, mean over the 2N anchors.
Strided convolutions pad symmetrically here (kclr pads as the authors do, `k - 1` split
low/high); that changes border values, not the work done.

Imported only by the benchmarks, and only where `torch` is installed.
"""

from __future__ import annotations

import torch
from torch import nn

BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def scaled(filters: int, width: float) -> int:
    return max(1, int(round(filters * width)))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        nn.init.zeros_(self.bn2.weight)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5)
            )

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        x = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(x)) + skip)


class ResNet(nn.Module):
    """Basic-block ResNet with kclr's channel counts; returns pooled features."""

    def __init__(self, depth: int = 18, width: float = 1.0, cifar_stem: bool = False):
        super().__init__()
        c0 = scaled(64, width)
        if cifar_stem:
            self.stem = nn.Sequential(
                nn.Conv2d(3, c0, 3, 1, 1, bias=False), nn.BatchNorm2d(c0, eps=1e-5), nn.ReLU()
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(3, c0, 7, 2, 3, bias=False),
                nn.BatchNorm2d(c0, eps=1e-5),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, 1),
            )
        blocks, cin = [], c0
        for group, (count, stride) in enumerate(zip(BLOCKS[depth], (1, 2, 2, 2), strict=True)):
            cout = scaled(64 * 2**group, width)
            for i in range(count):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = cin

    def forward(self, x):
        return self.blocks(self.stem(x)).mean(dim=(2, 3))


class ProjectionHead(nn.Module):
    """SimCLR v1 head: Linear(no bias) + BN + ReLU, Linear(no bias) + BN (no centre)."""

    def __init__(self, dim: int, output_dim: int = 64):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(dim, dim, bias=False), nn.BatchNorm1d(dim), nn.ReLU())
        self.out = nn.Linear(dim, output_dim, bias=False)
        self.out_bn = nn.BatchNorm1d(output_dim, affine=True)
        self.out_bn.bias.requires_grad_(False)

    def forward(self, x):
        return self.out_bn(self.out(self.hidden(x)))


def nt_xent(z: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent over `z` = [view 1 rows; view 2 rows], mean over the 2N anchors."""
    z = nn.functional.normalize(z, dim=1)
    n = z.shape[0] // 2
    logits = z @ z.T / temperature
    logits = logits - 1e9 * torch.eye(2 * n, dtype=z.dtype)
    labels = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return nn.functional.cross_entropy(logits, labels)


def simclr_model(
    depth: int = 18, width: float = 0.25, cifar_stem: bool = False, output_dim: int = 64
):
    encoder = ResNet(depth, width, cifar_stem)
    return encoder, ProjectionHead(encoder.feature_dim, output_dim)
