"""The paper's network (backbone + ADM) and, with adm=False, the plain binary classifier.

Both share backbone, global average pooling and the final linear; the ADM only adds the detection
branch and its short connection into the pooled feature (paper Fig. 3). timm's split is kept:
`forward_features(x)` is the backbone's last map, `forward_head(map)` pools it (plus the ADM) and
classifies, so an analysis can stop at either.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from iid.models.adm import ArtifactDetectionModule
from iid.models.backbones import create_backbone
from iid.models.output import ModelOutput


class Detector(nn.Module):
    """forward(x (B, 3, 224, 224) normalised with `mean`/`std`) -> ModelOutput; with the ADM its
    extras are `loc` (B, 168, 4) and `conf` (B, 168, 2)."""

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
        self.adm = ArtifactDetectionModule(channels, width=adm_width) if adm else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self.mean: tuple[float, float, float] = self.backbone.mean
        self.std: tuple[float, float, float] = self.backbone.std

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone(x)  # (B, C, 7, 7) at 224

    def forward_head(self, fmap: Tensor) -> ModelOutput:
        features = self.pool(fmap).flatten(1)  # (B, C)
        if self.adm is None:
            return ModelOutput(self.fc(features), features, {})
        out = self.adm(fmap)
        features = features + out.short  # short connection of the 1x1 map
        return ModelOutput(self.fc(features), features, {"loc": out.loc, "conf": out.conf})

    def forward(self, x: Tensor) -> ModelOutput:
        return self.forward_head(self.forward_features(x))
