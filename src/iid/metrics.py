"""Frame- and video-level detection metrics, DDP-correct.

A test frame is scored by its fake probability. Frame-level metrics use every frame once; a
video's score is the mean fake probability of its frames, and a video is the index of its record key
(`dataset/method/video_id`, see docs/interfaces.md) in the set's video list, never a folder name.

Under DDP every rank holds the frames of its shard; `FrameScores` gathers (frame row, prob, label,
video) from all ranks at `compute()` (torchmetrics, uneven sizes allowed) and keeps each frame row
once, so a frame a sampler scored twice (padding duplicates) never counts twice.

Metrics per level (frame_*, video_*): auc, acc (threshold 0.5), logloss (probabilities clipped to
[1e-7, 1 - 1e-7]), eer (equal error rate, linear interpolation on the ROC), ap (average precision).
"""

from __future__ import annotations

import math
import warnings

import torch
from torchmetrics import Metric
from torchmetrics.functional.classification import binary_auroc, binary_average_precision, binary_roc
from torchmetrics.utilities import dim_zero_cat

LEVEL_METRICS = ("auc", "acc", "logloss", "eer", "ap")
METRIC_KEYS = tuple(f"{lvl}_{m}" for lvl in ("frame", "video") for m in LEVEL_METRICS)
LOGLOSS_EPS = 1e-7


def equal_error_rate(prob: torch.Tensor, label: torch.Tensor) -> float:
    """EER: the rate where false-positive rate equals false-negative rate on the ROC curve.

    Between the two ROC points where FPR - FNR changes sign the curve is linear, so the crossing is
    interpolated there. prob, label: (N,); needs both classes (else NaN).
    """
    label = label.long()
    if label.min() == label.max():
        return math.nan
    fpr, tpr, _ = binary_roc(prob.double(), label)  # fpr increasing, fnr = 1 - tpr decreasing
    fnr = 1 - tpr
    d = fpr - fnr  # (P,) nondecreasing from -1 to +1
    i = int(torch.searchsorted(d.contiguous(), torch.zeros((), dtype=d.dtype)).item())  # first d >= 0
    if i == 0 or d[i] == 0:
        return float(fpr[i])
    t = -d[i - 1] / (d[i] - d[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def log_loss(prob: torch.Tensor, label: torch.Tensor) -> float:
    """Mean binary cross-entropy of probabilities of the fake class."""
    p = prob.double().clamp(LOGLOSS_EPS, 1 - LOGLOSS_EPS)
    y = label.double()
    return float(-(y * p.log() + (1 - y) * (1 - p).log()).mean())


def binary_scores(prob: torch.Tensor, label: torch.Tensor) -> dict[str, float]:
    """auc, acc, logloss, eer, ap of fake probabilities `prob` (N,) against labels (N,) 0/1.

    AUC, EER and AP need both classes: NaN (with a warning) when one is missing.
    """
    if prob.numel() == 0:
        return dict.fromkeys(LEVEL_METRICS, math.nan)
    label = label.long()
    out = {
        "acc": float(((prob >= 0.5).long() == label).double().mean()),
        "logloss": log_loss(prob, label),
    }
    if label.min() == label.max():
        warnings.warn("metrics: only one class present, AUC/EER/AP are undefined (NaN)", stacklevel=2)
        out.update(auc=math.nan, eer=math.nan, ap=math.nan)
    else:
        p = prob.double()
        out["auc"] = float(binary_auroc(p, label))
        out["eer"] = equal_error_rate(p, label)
        out["ap"] = float(binary_average_precision(p, label))
    return {k: out[k] for k in LEVEL_METRICS}


def video_level(
    prob: torch.Tensor, label: torch.Tensor, video: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per video: (video ids (V,) sorted, mean fake probability (V,), label (V,)).

    prob, label, video: (N,) one entry per frame; `video` identifies the record key. A video's
    label is that of its frames (all equal in a well-formed store; the max if not).
    """
    ids, inv = torch.unique(video, return_inverse=True)
    n = torch.zeros(len(ids), dtype=torch.float64, device=prob.device).index_add_(0, inv, torch.ones_like(prob, dtype=torch.float64))
    s = torch.zeros(len(ids), dtype=torch.float64, device=prob.device).index_add_(0, inv, prob.double())
    vlabel = torch.zeros(len(ids), dtype=torch.long, device=prob.device).scatter_reduce_(
        0, inv, label.long(), reduce="amax", include_self=False
    )
    return ids, s / n, vlabel


def detection_metrics(prob: torch.Tensor, label: torch.Tensor, video: torch.Tensor) -> dict[str, float]:
    """frame_* and video_* metrics (see module docstring) plus the counts `frames` and `videos`."""
    frame = binary_scores(prob, label)
    _, vprob, vlabel = video_level(prob, label, video)
    vid = binary_scores(vprob, vlabel)
    out = {f"frame_{k}": v for k, v in frame.items()} | {f"video_{k}": v for k, v in vid.items()}
    out["frames"] = int(prob.numel())
    out["videos"] = int(vprob.numel())
    return out


def dedupe_rows(rows: torch.Tensor, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Keep the first occurrence of each frame row; returns (rows, *values) sorted by row."""
    order = torch.argsort(rows, stable=True)
    r = rows[order]
    keep = torch.ones_like(r, dtype=torch.bool)
    keep[1:] = r[1:] != r[:-1]
    idx = order[keep]
    return (rows[idx], *(v[idx] for v in values))


class FrameScores(Metric):
    """Collects per-frame (row, fake probability, label, video) and computes `detection_metrics`.

    One instance per evaluated set (rows and video indices are unique within a set). `compute()`
    gathers all ranks' frames, de-duplicates by row, and returns the metric dict; `predictions()`
    returns the gathered, de-duplicated frames themselves (for prediction files).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in ("rows", "probs", "labels", "videos"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, rows: torch.Tensor, prob: torch.Tensor, label: torch.Tensor, video: torch.Tensor) -> None:
        """rows, prob, label, video: (B,) frame row in the store, fake probability, 0/1, video index."""
        self.rows.append(rows.detach().long().flatten())
        self.probs.append(prob.detach().double().flatten())
        self.labels.append(label.detach().long().flatten())
        self.videos.append(video.detach().long().flatten())

    def _gathered(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if isinstance(self.rows, list) and not self.rows:
            e = torch.zeros(0, dtype=torch.long, device=self.device)
            return e, e.double(), e, e
        cat = [dim_zero_cat(x) for x in (self.rows, self.probs, self.labels, self.videos)]
        return dedupe_rows(*cat)

    def compute(self) -> dict[str, float]:
        _, prob, label, video = self._gathered()
        return detection_metrics(prob, label, video)

    def predictions(self) -> dict[str, torch.Tensor]:
        """Gathered (synced under DDP) de-duplicated frames: row, prob, label, video (N,) each."""
        with self.sync_context(should_sync=self._to_sync, should_unsync=True):
            rows, prob, label, video = self._gathered()
        return {"row": rows.cpu(), "prob": prob.cpu(), "label": label.cpu(), "video": video.cpu()}
