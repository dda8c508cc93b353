"""Exposing the Deception (Ba et al., "Exposing the Deception: Uncovering More Forgery Clues for
Deepfake Detection", AAAI 2024) as the detector family `model=etd`.

Network (paper §3.1, Fig. 2)
- n local information blocks f_1..f_n (`model.blocks`, default 4), each a whole backbone of the
  `backbone` group (the paper: ImageNet ResNet-34; its Table 5 swaps it, here `backbone=...`) run on
  the whole face; z_i = global average pool of f_i(x) (512-d for ResNet-34, as the official code).
- Z = z_1 (+) ... (+) z_n (concatenation); the fusion layer f_g compresses Z into the global feature
  G = f_g(Z): Linear(nC, 1000)-BN-ReLU-Dropout-Linear(1000, 500)-BN-ReLU-Dropout-Linear(500, C)
  (`model.fusion` = the hidden widths, `model.global_dim` = C, default the block width; the official
  code's ChannelCompress); the classifier is Dropout(0.5)-Linear(C, 2) on G (official code).
- The predictive distributions the losses compare come from variational classifiers:
  P_G = softmax(classifier(G)), P_Z = softmax(W_Z Z) and P_{Z\\z_i} = softmax(W_i (Z \\ z_i)), one linear
  head per block on the concatenation without z_i (official code: `baseline_linear`, `local_linears`).
- `forward(x) -> ModelOutput(logits=P_G's logits, features=G, extras)`, extras: `local` (B, n, C) the
  z_i, `logits_z` (B, 2), `logits_minus` (B, n, 2). `forward_features(x)` -> (B, n, C', h, w), the
  blocks' last maps (Grad-CAM per block reads them), `forward_head(maps)` -> ModelOutput.

Losses (paper §3.2-3.3, appendix A), as implemented in iid.models.losses_etd
- Eq. 7 / 15 (the theorem): sum_i I(z_i; y | Z\\z_i) >= sum_i D_KL[P_Z || P_{Z\\z_i}].
- Eq. 8 / 23, Local Information Loss: L_LIL = exp(-sum_{i=1..n} D_KL[P_Z || P_{Z\\z_i}]) in (0, 1].
- Eq. 12, Global Information Loss: L_GIL = E_{G ~ E_phi(G|Z)} D_KL[P_Z || P_G].
- Eq. 13: L = L_CE + alpha L_LIL + beta L_GIL, alpha and beta set by Liebel & Koerner (2018)
  (paper §4.1): L = sum_k L_k / (2 sigma_k^2) + ln(1 + sigma_k^2) over k in {CE, LIL, GIL}, the
  sigma_k learned with the network (they live in the criterion), init 1 (official code, which also
  weights L_CE); or fixed (`model.weighting=fixed`, `model.alpha`, `model.beta`).
- L_CE is the sum of the cross-entropies of every classifier in use: P_G, P_Z (with either
  information loss) and each P_{Z\\z_i} (with L_LIL) (official code; without them P_Z and P_{Z\\z_i}
  would not be predictive distributions of y).

Constants the paper leaves open, and where ours come from
- Temperature T = 1.5 of every softmax inside the KL terms (`model.temperature`): the official
  code's `--temperature` default; the paper names no temperature.
- KL direction (`model.kl_direction`): `paper` (default) computes D_KL[P_Z || P_other] as Eq. 8 and
  12 write it; the official code computes nn.KLDivLoss(log P_Z, P_other) = D_KL[P_other || P_Z],
  `reference` gives that.
- P_Z is a fixed target in both KL terms (`model.detach_target=true`): Eq. 8 minimises over the local
  module's theta, Eq. 12 over the aggregation module's phi, and the official code detaches P_Z.
  The gradients of L_GIL still reach the blocks through G, as in the official code.
- Reduction: KL per sample summed over the 2 classes, averaged over the batch (the expectation of
  Eq. 12); the official code's nn.KLDivLoss() averages over batch x classes, i.e. half of ours.
  In Eq. 8 the batch mean is taken inside the exp, per block, then summed over blocks (official code).
- Fixed weights: alpha = 10 (L_LIL), beta = 2 (L_GIL) when `weighting=fixed`: the official code's
  `--scales [1, 2, 10]` for [CE, GIL, LIL].
- Dropout 0.5 in f_g and before the classifier, fusion widths 1000 and 500 (official code).
- The q(y|Z) head is trained whenever P_Z is used, also with L_LIL alone; the official code adds its
  cross-entropy only with L_GIL, leaving the L_LIL-only ablation's target head untrained.
Not reproduced: mixup and the official learning-rate schedule (Adam 5e-4 halved every 5 epochs,
cosine); every family here trains with the suite's `optim` group and `da` augmentation, so the
comparison changes one factor, the detector.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from iid.models.backbones import create_backbone
from iid.models.families import BackboneSettings, Family, family_options
from iid.models.losses_etd import KL_DIRECTIONS, WEIGHTINGS, ETDLoss
from iid.models.output import ModelOutput
from iid.settings import bounds, settings


@dataclass(frozen=True)
class ETDSettings:
    """The `model` group of the etd family (conf/model/etd.yaml)."""

    blocks: int = field(default=4, metadata=bounds(2))  # n >= 2 (paper §3.2)
    lil: bool = True
    gil: bool = True
    temperature: float = field(default=1.5, metadata=bounds(0, open_low=True))
    kl_direction: str = field(default="paper", metadata=bounds(choices=KL_DIRECTIONS))
    detach_target: bool = True
    weighting: str = field(default="learned", metadata=bounds(choices=WEIGHTINGS))
    alpha: float = field(default=10.0, metadata=bounds(0))
    beta: float = field(default=2.0, metadata=bounds(0))
    fusion: tuple[int, ...] = field(default=(1000, 500), metadata=bounds(1))
    global_dim: int | None = field(default=None, metadata=bounds(1, type=int, nullable=True))
    dropout: float = field(default=0.5, metadata=bounds(0, 1, open_high=True))


def etd_settings(model: Mapping[str, Any]) -> ETDSettings:
    keys = {f.name for f in dataclasses.fields(ETDSettings)}
    return settings(ETDSettings, "model", family_options(model, keys))


class LeaveOneOutHeads(nn.Module):
    """n linear heads, head i on the concatenation of all local features but z_i: (B, n, C) -> (B, n, 2).

    One batched einsum instead of n Linear layers; initialised like nn.Linear."""

    def __init__(self, n: int, width: int, num_classes: int = 2) -> None:
        super().__init__()
        fan_in = (n - 1) * width
        bound = fan_in**-0.5
        self.weight = nn.Parameter(torch.empty(n, num_classes, fan_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, num_classes).uniform_(-bound, bound))
        others = torch.tensor([[j for j in range(n) if j != i] for i in range(n)])  # (n, n-1)
        self.register_buffer("others", others, persistent=False)

    def forward(self, z: Tensor) -> Tensor:
        b, n, c = z.shape
        rest = z[:, self.others].reshape(b, n, (n - 1) * c)  # (B, n, (n-1)C): Z \ z_i per head
        return torch.einsum("bnf,nkf->bnk", rest, self.weight) + self.bias


class ETDNet(nn.Module):
    """The ETD network (see the module docstring)."""

    def __init__(self, backbone: str, pretrained: Any = False, blocks: int = 4, fusion: tuple[int, ...] = (1000, 500),
                 global_dim: int | None = None, dropout: float = 0.5, aux_z: bool = True,
                 aux_minus: bool = True, num_classes: int = 2) -> None:  # fmt: skip
        super().__init__()
        self.blocks = nn.ModuleList(create_backbone(backbone, pretrained) for _ in range(blocks))
        width = self.blocks[0].num_features
        self.block_width = width
        g = int(global_dim or width)
        layers: list[nn.Module] = []
        prev = blocks * width
        for h in fusion:  # Linear-BN-ReLU-Dropout per hidden width, then the projection to G
            layers += [nn.Linear(prev, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            prev = h
        layers.append(nn.Linear(prev, g))
        self.fuse = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(g, num_classes))
        # the variational heads exist only when a loss reads them (an unused parameter breaks DDP)
        self.head_z = nn.Linear(blocks * width, num_classes) if aux_z else None
        self.head_minus = LeaveOneOutHeads(blocks, width, num_classes) if aux_minus else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = g
        self.mean = self.blocks[0].mean
        self.std = self.blocks[0].std

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, n, C, h, w): the last map of every local information block."""
        return torch.stack([block(x) for block in self.blocks], 1)

    def forward_head(self, maps: Tensor) -> ModelOutput:
        b, n = maps.shape[:2]
        z = maps.mean((-2, -1))  # (B, n, C) local features
        joint = z.reshape(b, -1)  # Z
        g = self.fuse(joint)  # G
        extras = {"local": z}
        if self.head_z is not None:
            extras["logits_z"] = self.head_z(joint)
        if self.head_minus is not None:
            extras["logits_minus"] = self.head_minus(z)
        return ModelOutput(self.fc(g), g, extras)

    def forward(self, x: Tensor) -> ModelOutput:
        return self.forward_head(self.forward_features(x))


def _build(model: Mapping[str, Any], backbone: BackboneSettings) -> tuple[nn.Module, nn.Module]:
    s = etd_settings(model)
    net = ETDNet(backbone.name, backbone.pretrained, blocks=s.blocks, fusion=s.fusion, global_dim=s.global_dim,
                 dropout=s.dropout, aux_z=s.lil or s.gil, aux_minus=s.lil)  # fmt: skip
    criterion = ETDLoss(lil=s.lil, gil=s.gil, temperature=s.temperature, kl_direction=s.kl_direction,
                        detach_target=s.detach_target, weighting=s.weighting, alpha=s.alpha, beta=s.beta)  # fmt: skip
    return net, criterion


ETD = Family(check=etd_settings, build=_build)
