"""Multivariate interaction I([N]) (paper §3.2, eq. 1, Table 1): does the whole-face pattern help or hurt?

The 224 input is cut into a `grid` x `grid` lattice of units (16 x 16: 14 px squares). With f the
fake-class score of an image in which only the units of a set S keep their pixels and every other
unit is set to the baseline,

    I([N]) = [f(N) - f(empty)] - sum_i [f({i}) - f(empty)]

is the part of the score that no unit explains alone: the interaction among all units (the paper's
reading: the global identity pattern). Per frame that is 2 + n forward passes (f(N), f(empty), n = 256
singletons); f(empty) is one pass per data set (the baseline is fixed), and the singletons of every
frame go through the network in batches of `ctx.batch_size` images, never one unit at a time.
The frame-level AUC of I([N]) against real/fake says whether the interaction pushes fakes up
(AUC > 0.5) or down (< 0.5): the paper reports > 0.5 in-dataset and < 0.5 cross-dataset for binary
classifiers (Hypothesis 2).

Protocol choices:
- The baseline: the paper does not say what an absent unit is set to. `baseline=mean` (default):
  the per-pixel mean image of the frames analysed in that data set (an average face, so an absent unit
  looks like "a face there" rather than a black hole); `baseline=zeros`: black pixels (0 before
  normalisation); `baseline=norm_zero`: 0 after normalisation (the normalisation mean colour).
- f: `score=logodds` (default) is logit_fake - logit_real, the log-odds of the fake probability,
  which is additive where the probability saturates; `score=prob` is the softmax probability,
  `score=logit` the raw fake logit.
- 5 frames per video at equal intervals (the paper's), on the test split; `max_videos` (per data
  set, half real and half fake) bounds the cost: each frame costs 257 forward passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from iid.reporting import stats
from iid.reporting.stats import auc
from iid.settings import bounds


@dataclass(frozen=True)
class InteractionSettings:
    name: str = "interaction"
    splits: tuple[str, ...] = ("test",)
    frames: int = field(default=5, metadata=bounds(1))  # per video, at equal intervals
    max_videos: int | None = field(default=None, metadata=bounds(2, type=int, nullable=True))  # per data set, balanced
    grid: int = field(default=16, metadata=bounds(1, 224))
    baseline: str = field(default="mean", metadata=bounds(choices=("mean", "zeros", "norm_zero")))
    score: str = field(default="logodds", metadata=bounds(choices=("logodds", "prob", "logit")))


def unit_masks(size: int, grid: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(grid*grid, 1, size, size) bool: unit i = row i // grid, column i % grid of the lattice
    (cell edges at floor(k * size / grid), so every pixel is in exactly one unit)."""
    edges = (torch.arange(grid + 1) * size) // grid
    cell = torch.bucketize(torch.arange(size), edges[1:-1], right=True)  # (size,) lattice index of each pixel
    unit = cell[:, None] * grid + cell[None, :]  # (size, size)
    return (unit[None] == torch.arange(grid * grid)[:, None, None])[:, None].to(device)


def score_fn(kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """(B, 2) logits -> (B,) the fake-class score f."""
    if kind == "logodds":
        return lambda lg: (lg[:, 1] - lg[:, 0]).double()
    if kind == "prob":
        return lambda lg: lg.double().softmax(-1)[:, 1]
    return lambda lg: lg[:, 1].double()


@torch.no_grad()
def interaction(forward: Callable[[torch.Tensor], Any], images: torch.Tensor, baseline: torch.Tensor, *,
                grid: int = 16, batch_size: int = 64, score: str = "logodds") -> dict[str, torch.Tensor]:
    """I([N]) of each image (model inputs, already normalised) against `baseline` (same space, (3,H,W)).

    `forward(x) -> ModelOutput` (or anything with `.logits`). The singleton inputs of all images are
    streamed through `forward` in batches of `batch_size`. Returns float64 tensors (B,): `I`,
    `f_full` f(N), `f_singles` sum_i f({i}), and the scalar `f_empty`."""
    f = score_fn(score)
    b, _, h, w = images.shape
    dev = images.device
    masks = unit_masks(h, grid, dev) if h == w else _rect_masks(h, w, grid, dev)  # (n, 1, H, W)
    n = masks.shape[0]
    base = baseline.to(dev, images.dtype)[None]  # (1, 3, H, W)
    f_empty = f(forward(base).logits)[0]
    f_full = torch.cat([f(forward(images[i:i + batch_size]).logits) for i in range(0, b, batch_size)])
    singles = torch.zeros(b, dtype=torch.float64, device=dev)
    pairs = b * n  # (image, unit) pairs, image-major
    for start in range(0, pairs, batch_size):
        idx = torch.arange(start, min(start + batch_size, pairs), device=dev)
        img, unit = idx // n, idx % n
        x = torch.where(masks[unit], images[img], base)  # (k, 3, H, W): only unit `unit` of image `img`
        singles.index_add_(0, img, f(forward(x).logits))
    inter = (f_full - f_empty) - (singles - n * f_empty)
    return {"I": inter, "f_full": f_full, "f_singles": singles, "f_empty": f_empty}


def _rect_masks(h: int, w: int, grid: int, dev) -> torch.Tensor:
    ey, ex = (torch.arange(grid + 1) * h) // grid, (torch.arange(grid + 1) * w) // grid
    cy = torch.bucketize(torch.arange(h), ey[1:-1], right=True)
    cx = torch.bucketize(torch.arange(w), ex[1:-1], right=True)
    unit = cy[:, None] * grid + cx[None, :]
    return (unit[None] == torch.arange(grid * grid)[:, None, None])[:, None].to(dev)


# -- the run -------------------------------------------------------------------------------------
def run(ctx: Any, s: InteractionSettings) -> dict[str, Any]:
    from iid.analysis.common import batches, eval_inputs

    sets = ctx.open_sets(s.splits, frames_per_video=s.frames, fakes="target", max_videos=s.max_videos, balance=True)
    rows, results = [], {}
    for model in ctx.models:
        results[model.name] = {}
        for fr in sets:
            imgs = [eval_inputs(model, b)["image"] for _, b in batches(fr, ctx.batch_size)]
            images = torch.cat(imgs)  # (R, 3, 224, 224), normalised: the network's inputs
            base = _baseline(s.baseline, images, model)
            res = interaction(model.module, images, base, grid=s.grid, batch_size=ctx.batch_size, score=s.score)
            inter, full, singles = (res[k].cpu().numpy() for k in ("I", "f_full", "f_singles"))
            f0 = float(res["f_empty"])
            n = s.grid * s.grid
            local = singles - n * f0
            ci = stats.frame_cell(inter, fr.label, fr.video)  # frames of a video are resampled together
            results[model.name][fr.name] = {
                "kind": fr.kind, "frames": len(fr), "videos": len(set(fr.video)), "fakes": int(fr.label.sum()),
                "auc_I": auc(inter, fr.label), "auc_I_ci95": [ci.low, ci.high], "auc_score": auc(full, fr.label),
                "auc_local": auc(local, fr.label),
                "f_empty": f0, "mean_I_real": float(inter[fr.label == 0].mean()) if (fr.label == 0).any() else None,
                "mean_I_fake": float(inter[fr.label == 1].mean()) if (fr.label == 1).any() else None,
            }  # fmt: skip
            ctx.log(f"interaction {model.name} on {fr.name}: AUC of I([N]) {ci.mean:.3f} [{ci.low:.3f}, {ci.high:.3f}] "
                    f"({len(fr)} frames of {ci.videos} videos)")
            for i in range(len(fr)):
                rows.append({"model": model.name, "set": fr.name, "kind": fr.kind, "video": fr.video[i],
                             "frame": int(fr.frame[i]), "label": int(fr.label[i]), "I": float(inter[i]),
                             "f_full": float(full[i]), "local": float(local[i]), "units": n})  # fmt: skip
    ctx.outputs.table("interaction", rows)
    ctx.outputs.figure("interaction", plot(rows))
    summary = {m: {n: {"auc_I": r["auc_I"], "auc_I_ci95": r["auc_I_ci95"], "kind": r["kind"]} for n, r in per.items()} for m, per in results.items()}
    protocol = {"grid": s.grid, "units": s.grid * s.grid, "baseline": s.baseline, "score": s.score,
                "frames_per_video": s.frames, "max_videos": s.max_videos, "splits": list(s.splits),
                "forward_passes_per_frame": s.grid * s.grid + 1, "plus_per_set": 1}  # fmt: skip
    return {"summary": summary, "results": results, "protocol": protocol}


def _baseline(kind: str, images: torch.Tensor, model: Any) -> torch.Tensor:
    """The absent-unit value in the network's (normalised) input space, (3, H, W)."""
    if kind == "mean":
        return images.mean(0)
    if kind == "norm_zero":
        return torch.zeros_like(images[0])
    mean, std = model.module.mean[0].to(images), model.module.std[0].to(images)  # (3, 1, 1)
    return ((0.0 - mean) / std).expand_as(images[0]).clone()


# -- the figure (the notebooks call this on interaction.csv) -----------------------------------------------
def plot(rows: list[dict[str, Any]]):
    """Per model and data set: the distribution of I([N]) for real and fake frames, with its AUC."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    sets = list(dict.fromkeys(r["set"] for r in rows))
    fig, axes = plt.subplots(len(models) or 1, len(sets) or 1, figsize=(3.6 * max(1, len(sets)), 2.9 * max(1, len(models))),
                             squeeze=False)  # fmt: skip
    for i, m in enumerate(models):
        for j, name in enumerate(sets):
            ax = axes[i][j]
            rs = [r for r in rows if r["model"] == m and r["set"] == name]
            val = np.array([float(r["I"]) for r in rs])
            lab = np.array([int(r["label"]) for r in rs])
            data = [val[lab == 0], val[lab == 1]]
            ax.boxplot(data, tick_labels=["real", "fake"], showfliers=True, widths=0.5)
            for k, d in enumerate(data):
                ax.scatter(np.full(len(d), k + 1) + np.random.default_rng(k).uniform(-0.12, 0.12, len(d)), d,
                           s=6, alpha=0.5, color=("tab:blue", "tab:red")[k])  # fmt: skip
            ax.axhline(0, color="gray", lw=0.8, ls=":")
            kind = rs[0].get("kind", "") if rs else ""
            ax.set_title(f"{m} / {name} ({kind})\nAUC of I([N]) = {auc(val, lab):.3f}", fontsize=9)
            if j == 0:
                ax.set_ylabel("I([N])")
    units = {int(r["units"]) for r in rows if r.get("units") not in (None, "")}
    grid = f" of all {int(round(next(iter(units)) ** 0.5))}x{int(round(next(iter(units)) ** 0.5))} units" if len(units) == 1 else ""
    fig.suptitle(f"Multivariate interaction I([N]){grid}", fontsize=11)
    fig.tight_layout()
    return fig
