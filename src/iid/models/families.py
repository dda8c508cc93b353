"""Detector families: the one seam between the suite and a kind of model.

A family is selected by the `model` config group (`model=caddm`, `model=binary`, ...), whose node
names it (`family: caddm`) and holds its options. A family is a `Family(check, build)`: `check(node)`
validates the options (cheap: runs before any data is prepared), `build(node, backbone)` returns
`(network, criterion)`:

- network: an nn.Module with `forward(x) -> ModelOutput` (iid.models.output), `mean`/`std` (the
  input normalisation) and `num_features`; timm's `forward_features` / `forward_head` split where
  the family has one;
- criterion: an nn.Module called as `criterion(output, batch) -> dict` with `loss` and detached
  parts to log (its parameters, if any, are trained with the network's).

The LightningModule knows nothing else about a family. Adding one is a `Family` in its own module,
registered here by import path (so its imports stay lazy) or with `register_family`, and a
`conf/model/<name>.yaml`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from torch import nn

from iid.errors import UserError
from iid.models.backbones import TIMM_NAMES
from iid.settings import bounds, plain, settings


class Family(NamedTuple):
    check: Callable[[Mapping[str, Any]], Any]  # model node -> validated options (UserError if bad)
    build: Callable[[Mapping[str, Any], BackboneSettings], tuple[nn.Module, nn.Module]]


# family name -> "module:attribute" of its Family (imported on first use) or the Family itself
FAMILIES: dict[str, str | Family] = {
    "caddm": "iid.models.families:CADDM",
    "binary": "iid.models.families:BINARY",
    "etd": "iid.models.etd:ETD",
}


def register_family(name: str, family: Family) -> None:
    FAMILIES[name] = family


@dataclass(frozen=True)
class BackboneSettings:
    """The `backbone` group: a timm model by our name, and its initial weights (false: random, true:
    timm's hub, a path: a local weights file)."""

    name: str = field(default="resnet34", metadata=bounds(choices=tuple(TIMM_NAMES)))
    pretrained: Any = False


@dataclass(frozen=True)
class ADMSettings:
    """The Artifact Detection Module's options (`model.adm.*` of the caddm family)."""

    width: int | None = field(default=512, metadata=bounds(1, type=int, nullable=True))
    iou_threshold: float = field(default=0.5, metadata=bounds(0, 1, open_low=True, open_high=True))
    force_best: bool = True
    neg_pos_ratio: float = field(default=2.0, metadata=bounds(0, open_low=True))
    mining: str = field(default="image", metadata=bounds(choices=("image", "batch")))
    alpha: float = field(default=1.0, metadata=bounds(0))
    beta: float = field(default=0.1, metadata=bounds(0))
    variances: tuple[float, ...] = field(default=(0.1, 0.2), metadata=bounds(0, open_low=True))

    def __post_init__(self) -> None:
        if len(self.variances) != 2:
            raise UserError(f"model.adm.variances={list(self.variances)}: give [centre, size]")


def family_name(model_cfg: Mapping[str, Any]) -> str:
    name = model_cfg.get("family")
    if name not in FAMILIES:
        raise UserError(f"model.family={name!r}: choose one of {', '.join(sorted(FAMILIES))} (model=<name>)")
    return str(name)


def get_family(name: str) -> Family:
    target = FAMILIES[name]
    if isinstance(target, Family):
        return target
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def check_model(model_cfg: Any) -> None:
    """Validate the `model` group (family name and options) without building anything."""
    model = plain(model_cfg)
    get_family(family_name(model)).check(model)


def build_family(model_cfg: Any, backbone_cfg: Any, pretrained: bool | str | None = None) -> tuple[nn.Module, nn.Module]:
    """(network, criterion) of the family `model_cfg` names; `pretrained` overrides the backbone's
    initial weights (False when a checkpoint's weights replace them anyway)."""
    model = plain(model_cfg)
    backbone = settings(BackboneSettings, "backbone", backbone_cfg)
    if pretrained is not None:
        backbone = BackboneSettings(backbone.name, pretrained)
    family = get_family(family_name(model))
    family.check(model)
    return family.build(model, backbone)


def family_options(model: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
    """The family's own keys (all but `family`); any other key is a typo that would never take effect."""
    extra = sorted(set(model) - allowed - {"family"})
    if extra:
        raise UserError(f"model ({model.get('family')}): unknown key(s) {extra}; known: {sorted(allowed)}")
    return {k: v for k, v in model.items() if k != "family"}


def _adm(model: Mapping[str, Any]) -> ADMSettings:
    return settings(ADMSettings, "model.adm", family_options(model, {"adm"}).get("adm"))


def _build_caddm(model: Mapping[str, Any], backbone: BackboneSettings) -> tuple[nn.Module, nn.Module]:
    """The paper's ID-unaware detector: backbone + ADM, trained with the detection loss."""
    from iid.models.detector import Detector
    from iid.models.losses import DetectorLoss

    adm = _adm(model)
    net = Detector(backbone.name, backbone.pretrained, adm=True, adm_width=adm.width)
    criterion = DetectorLoss(alpha=adm.alpha, beta=adm.beta, threshold=adm.iou_threshold, force_best=adm.force_best,
                             neg_pos_ratio=adm.neg_pos_ratio, variances=adm.variances, mining=adm.mining)  # fmt: skip
    return net, criterion


def _build_binary(model: Mapping[str, Any], backbone: BackboneSettings) -> tuple[nn.Module, nn.Module]:
    """The plain binary classifier: the same backbone, pooling and final linear, cross-entropy only."""
    from iid.models.detector import Detector
    from iid.models.losses import ClassificationLoss

    return Detector(backbone.name, backbone.pretrained, adm=False), ClassificationLoss()


CADDM = Family(check=_adm, build=_build_caddm)
BINARY = Family(check=lambda model: family_options(model, set()), build=_build_binary)
