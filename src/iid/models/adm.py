"""The Artifact Detection Module (paper §4.1): extra layers, multi-scale heads, short connection.

From the backbone's last map (B, C, 7, 7) at 224 input (at other input sizes the map is first resampled
to 7x7 bilinearly) the extra layers make four maps:
  7x7  1x1-conv residual block C -> W   (changes the width only)
  5x5  3x3 valid-conv residual block
  3x3  3x3 valid-conv residual block
  1x1  end block: 3x3 valid conv, ReLU, 1x1 conv, plus a 3x3 valid-conv shortcut (no BatchNorm,
       as in the reference: BN on a 1x1 map would be a per-batch statistic of one value per image)
Every map carries 2 anchors per cell (anchors.py order); each has a location head (2 x 4 offsets) and
a confidence head (2 x 2 classes: 0 genuine/background, 1 artifact): 3x3 convs on the 7/5/3 maps,
1x1 convs on the 1x1 map, as in the reference.

Width W: the reference runs the extra layers at the backbone's width C (512 for ResNet-18/34, but
1536-2048 for the others, i.e. ~40M parameters per 3x3 conv). We use a fixed width (default 512 =
the reference for ResNet-18/34); `width=None` gives the reference's W = C. The short connection adds
the 1x1 map to the pooled backbone feature; when W != C (impossible in the reference) a linear
projection W -> C maps it first, so the final linear sees C features with or without the ADM.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from iid.models.anchors import ANCHORS_PER_CELL, FEATURE_MAPS

NUM_ANCHOR_CLASSES = 2


class ResidualBlock(nn.Module):
    """conv(k, valid)-BN-ReLU-conv3x3(same)-BN + conv(k, valid)-BN shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class EndBlock(nn.Module):
    """3x3 valid conv-ReLU-1x1 conv + 3x3 valid conv shortcut, then ReLU: 3x3 -> 1x1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3), nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 1)
        )
        self.shortcut = nn.Conv2d(channels, channels, 3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ADMOutput(NamedTuple):
    loc: Tensor  # (B, 168, 4) encoded offsets per anchor
    conf: Tensor  # (B, 168, 2) logits per anchor: 0 genuine, 1 artifact
    short: Tensor  # (B, C) the 1x1 map (projected to C) for the short connection


class ArtifactDetectionModule(nn.Module):
    def __init__(self, in_channels: int, width: int | None = 512) -> None:
        super().__init__()
        width = int(width or in_channels)
        self.in_channels, self.width = in_channels, width
        self.extra = nn.ModuleList(
            [
                ResidualBlock(in_channels, width, kernel_size=1),  # 7x7
                ResidualBlock(width, width, kernel_size=3),  # 5x5
                ResidualBlock(width, width, kernel_size=3),  # 3x3
                EndBlock(width),  # 1x1
            ]
        )
        kernels = [3, 3, 3, 1]  # the 1x1 map gets 1x1 heads
        a = ANCHORS_PER_CELL
        self.loc_heads = nn.ModuleList(nn.Conv2d(width, a * 4, k, padding=k // 2) for k in kernels)
        self.conf_heads = nn.ModuleList(
            nn.Conv2d(width, a * NUM_ANCHOR_CLASSES, k, padding=k // 2) for k in kernels
        )
        self.project = nn.Identity() if width == in_channels else nn.Linear(width, in_channels)

    def extra_maps(self, x: Tensor) -> list[Tensor]:
        """Backbone map (B, C, 7, 7) -> [(B, W, 7, 7), (B, W, 5, 5), (B, W, 3, 3), (B, W, 1, 1)]."""
        maps = []
        for layer in self.extra:
            x = layer(x)
            maps.append(x)
        return maps

    def forward(self, x: Tensor) -> ADMOutput:
        n = FEATURE_MAPS[0]
        if tuple(x.shape[-2:]) != (n, n):
            # another input size than 224 (image_size=112 at scale=mini gives 4x4): resample the map to
            # the anchors' 7x7 grid; anchors are fractions of the image, so their boxes stay valid
            x = F.interpolate(x, size=(n, n), mode="bilinear", align_corners=False)
        maps = self.extra_maps(x)
        b = x.shape[0]
        # (B, A*k, H, W) -> (B, H, W, A*k) -> (B, H*W*A, k): cells row-major, then the anchors of a cell
        loc = torch.cat([h(m).permute(0, 2, 3, 1).reshape(b, -1, 4) for h, m in zip(self.loc_heads, maps)], 1)
        conf = torch.cat(
            [
                h(m).permute(0, 2, 3, 1).reshape(b, -1, NUM_ANCHOR_CLASSES)
                for h, m in zip(self.conf_heads, maps)
            ],
            1,
        )
        short = self.project(maps[-1].flatten(1))  # (B, W) -> (B, C)
        return ADMOutput(loc=loc, conf=conf, short=short)
