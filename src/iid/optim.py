"""Optimiser and learning-rate schedule from the `optim` config group (paper §5.1).

The schedule is piecewise constant per epoch: `lr` until the first milestone, then `lrs[i]` from
`milestones[i]` on. It is returned for Lightning with interval "epoch", i.e. stepped once at the end
of every epoch, so epoch e (0-based) trains with the lr of the last milestone <= e.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from iid.errors import UserError


class PiecewiseLR:
    """lr factor of epoch e for LambdaLR: value(e) / base lr. A plain object (not a closure) so the
    scheduler's state_dict holds only numbers."""

    def __init__(self, lr: float, milestones: Sequence[int], lrs: Sequence[float]):
        self.lr = float(lr)
        self.milestones = [int(m) for m in milestones]
        self.lrs = [float(x) for x in lrs]

    def value(self, epoch: int) -> float:
        v = self.lr
        for m, x in zip(self.milestones, self.lrs):
            if epoch >= m:
                v = x
        return v

    def __call__(self, epoch: int) -> float:
        return self.value(epoch) / self.lr


def check_optim_config(cfg: Mapping[str, Any]) -> None:
    name = str(cfg.get("name", "adam")).lower()
    if name not in ("adam", "adamw", "sgd"):
        raise UserError(f"optim.name={name!r}: choose adam, adamw or sgd")
    if float(cfg["lr"]) <= 0:
        raise UserError(f"optim.lr={cfg['lr']}: must be > 0")
    ms, lrs = list(cfg.get("milestones") or []), list(cfg.get("lrs") or [])
    if len(ms) != len(lrs):
        raise UserError(f"optim.milestones ({len(ms)}) and optim.lrs ({len(lrs)}) must have the same length")
    if any(b <= a for a, b in zip(ms, ms[1:])) or any(m < 1 for m in ms):
        raise UserError(f"optim.milestones={ms}: must be increasing epochs >= 1")
    if any(float(x) <= 0 for x in lrs):
        raise UserError(f"optim.lrs={lrs}: every lr must be > 0")


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The dict Lightning's `configure_optimizers` returns: optimizer + per-epoch scheduler."""
    check_optim_config(cfg)
    name = str(cfg.get("name", "adam")).lower()
    lr, wd = float(cfg["lr"]), float(cfg.get("weight_decay", 0.0))
    params = list(params)
    # multi-tensor kernels: torch picks them by default on CUDA only; on CPU they halve the step time
    impl = {"foreach": True} if params and not params[0].is_cuda else {}
    if name in ("adam", "adamw"):
        betas = tuple(float(b) for b in cfg.get("betas", (0.9, 0.999)))
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        opt = cls(params, lr=lr, betas=betas, weight_decay=wd, **impl)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=float(cfg.get("momentum", 0.9)), weight_decay=wd, **impl)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, PiecewiseLR(lr, cfg.get("milestones") or [], cfg.get("lrs") or []))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch", "frequency": 1}}
