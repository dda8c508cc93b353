"""The ID-unaware detector (backbone + ADM) and, with adm=False, the plain binary classifier.

Both share backbone, global average pooling and the final linear; the ADM only adds the detection
branch and its short connection into the pooled feature (paper Fig. 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from iid.models.adm import ArtifactDetectionModule
from iid.models.backbones import create_backbone


class DetectorOutput(NamedTuple):
    logits: Tensor  # (B, num_classes) image-level: 0 real, 1 fake
    loc: Tensor | None  # (B, 168, 4) SSD offsets per anchor, None without ADM
    conf: Tensor | None  # (B, 168, 2) per-anchor logits (0 genuine, 1 artifact), None without ADM
    features: Tensor  # (B, C) the feature the final linear sees (pooled backbone [+ ADM short connection])


class Detector(nn.Module):
    """forward(x (B, 3, 224, 224) normalised with `mean`/`std`) -> DetectorOutput."""

    def __init__(
        self,
        backbone: str,
        pretrained: bool | str | Path = False,
        adm: bool = True,
        num_classes: int = 2,
        adm_width: int | None = 512,
    ) -> None:
        super().__init__()
        self.backbone = create_backbone(backbone, pretrained)
        channels = self.backbone.num_features
        self.num_features = channels
        self.adm = None
        if adm:
            self.adm = ArtifactDetectionModule(channels, width=adm_width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self.mean: tuple[float, float, float] = self.backbone.mean
        self.std: tuple[float, float, float] = self.backbone.std

    @classmethod
    def from_config(
        cls, backbone: Mapping[str, Any], adm: Mapping[str, Any], num_classes: int = 2
    ) -> Detector:
        """Build from the `backbone` and `adm` config groups (conf/backbone/*.yaml, conf/adm/*.yaml)."""
        return cls(
            backbone=backbone["name"],
            pretrained=backbone.get("pretrained", False),
            adm=bool(adm.get("enabled", True)),
            num_classes=num_classes,
            adm_width=adm.get("width", 512),
        )

    def normalize(self, images: Tensor) -> Tensor:
        """images (B, 3, H, W) float in [0, 1] -> normalised input for this backbone."""
        mean = torch.tensor(self.mean, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        return (images - mean) / std

    def forward(self, x: Tensor) -> DetectorOutput:
        fmap = self.backbone(x)  # (B, C, 7, 7) at 224
        features = self.pool(fmap).flatten(1)  # (B, C)
        loc = conf = None
        if self.adm is not None:
            out = self.adm(fmap)
            loc, conf = out.loc, out.conf
            features = features + out.short  # short connection of the 1x1 map
        return DetectorOutput(logits=self.fc(features), loc=loc, conf=conf, features=features)
