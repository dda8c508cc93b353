"""Optional batch stages around the train and eval transforms, each selected by its config group.

- before the train transform, on the uint8 canvases: `sbi` (Self-Blended Images: real rows made into
  pseudo-fakes, iid.augment.sbi);
- after the eval transform, on the [0, 1] crops before normalisation: `perturb` (test-time
  perturbations of the robustness table, iid.augment.perturb).

A stage is an nn.Module `batch dict -> batch dict` with `reseed(seed)`; a group that is off (or absent
from an older checkpoint's config) adds none. The stage modules are imported only when selected.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from torch import nn

# group -> (module with `build(node, seed) -> nn.Module | None`, where it runs)
STAGES = {"sbi": ("iid.augment.sbi", "train"), "perturb": ("iid.augment.perturb", "eval")}


def enabled(node: Any) -> bool:
    """A stage group is on unless absent, `enabled: false` or `name: none`."""
    if not isinstance(node, Mapping):
        return False
    return bool(node.get("enabled", True)) and node.get("name", "on") not in (None, "none")


def build_stages(cfg: Mapping[str, Any], where: str, seed: int = 0) -> nn.ModuleList:
    """The stages of `where` ("train" or "eval") the config turns on, in STAGES order."""
    out = nn.ModuleList()
    for group, (module, at) in STAGES.items():
        if at == where and enabled(cfg.get(group)):
            stage = importlib.import_module(module).build(cfg[group], seed)
            if stage is not None:
                out.append(stage)
    return out


def run_stages(stages: nn.ModuleList, batch: dict[str, Any]) -> dict[str, Any]:
    for stage in stages:
        batch = stage(batch)
    return batch
