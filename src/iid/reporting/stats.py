"""Uncertainty of AUCs over test videos: stratified bootstrap, means over seeds, paired differences.

A cell of a table is the mean over seeds of an AUC on one test set. Its 95% interval comes from a
bootstrap over the test videos: each resample draws the real and the fake videos with replacement
(stratified, so every resample has both classes), every seed's model is scored on the *same*
resample, and the seed-mean is recomputed; the interval is the 2.5/97.5 percentiles of those means.
It therefore shows how much the number would move on another draw of test videos of the same kind;
the spread between seeds (their standard deviation) is reported beside it, not folded in.

A paired difference (row vs the row the paper compares it with) uses the same resamples for both
rows, so what the two rows share (hard videos) cancels out.

Frame-level AUCs resample videos too (all frames of a drawn video come along): frames of one video
are not independent draws.

AUCs of many resamples are computed at once: with per-video weights w (how often a resample drew
each video), AUC = sum_{p fake, n real} w_p w_n ([s_p > s_n] + [s_p = s_n]/2) / (W_fake W_real),
evaluated for all resamples by one sort and cumulative sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def weighted_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC under per-item weights. scores, labels: (N,); weights: (B, N) -> (B,) one AUC per row.

    Ties count one half, as in the Mann-Whitney statistic (and sklearn's roc_auc_score)."""
    weights = np.atleast_2d(weights).astype(np.float64)
    order = np.argsort(scores, kind="stable")
    s, y, w = scores[order], labels[order].astype(bool), weights[:, order]
    w_neg = np.where(~y, w, 0.0)  # (B, N)
    w_pos = np.where(y, w, 0.0)
    # groups of equal scores: negatives strictly below a score, and negatives tied with it
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    group = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1  # (N,) group index
    neg_per_group = np.add.reduceat(w_neg, starts, axis=1)  # (B, G)
    below = np.cumsum(neg_per_group, axis=1) - neg_per_group  # negatives in lower groups
    credit = below[:, group] + 0.5 * neg_per_group[:, group]  # (B, N)
    total = w_pos.sum(1) * w_neg.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (w_pos * credit).sum(1) / total, np.nan)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(weighted_auc(np.asarray(scores, float), np.asarray(labels), np.ones((1, len(scores))))[0])


def stratified_counts(labels: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, N) draw counts: each resample draws as many reals and fakes as there are, with
    replacement, within each class."""
    counts = np.zeros((n_boot, len(labels)))
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        if len(idx):
            counts[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1 / len(idx)), size=n_boot)
    return counts


@dataclass(frozen=True)
class Videos:
    """One test set's videos as scored by several seeds: scores (S, V) video-level scores, labels (V,);
    for frame level, `frames`: per seed the frame scores (S, F), with `frame_video` (F,) the video of
    each frame and `frame_labels` (F,)."""

    labels: np.ndarray
    scores: np.ndarray
    frame_scores: np.ndarray | None = None
    frame_video: np.ndarray | None = None
    frame_labels: np.ndarray | None = None


def seed_aucs(v: Videos, video_weights: np.ndarray, level: str = "video") -> np.ndarray:
    """(B, S) AUC of each seed under each resample of videos (weights (B, V))."""
    if level == "video":
        return np.stack([weighted_auc(v.scores[k], v.labels, video_weights) for k in range(len(v.scores))], 1)
    fw = video_weights[:, v.frame_video]  # a drawn video brings all its frames
    return np.stack([weighted_auc(v.frame_scores[k], v.frame_labels, fw) for k in range(len(v.frame_scores))], 1)


@dataclass(frozen=True)
class Cell:
    mean: float  # mean over seeds
    low: float  # 95% bootstrap interval of the seed-mean over test videos
    high: float
    seed_sd: float  # standard deviation between seeds (nan with one seed)
    seeds: int
    videos: int


def cell(v: Videos, level: str = "video", n_boot: int = 1000, seed: int = 0) -> Cell:
    point = seed_aucs(v, np.ones((1, len(v.labels))), level)[0]  # (S,)
    counts = stratified_counts(v.labels, n_boot, np.random.default_rng(seed))
    boot = seed_aucs(v, counts, level).mean(1)
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    sd = float(np.std(point, ddof=1)) if len(point) > 1 else float("nan")
    return Cell(float(np.mean(point)), float(lo), float(hi), sd, len(point), len(v.labels))


def frame_cell(scores: np.ndarray, labels: np.ndarray, videos: Sequence, n_boot: int = 1000, seed: int = 0) -> Cell:
    """Frame-level AUC of one scoring of frames (one seed) with its 95% interval over their videos:
    frames (N,) with their labels and video keys; a video's frames are resampled together."""
    keys, frame_video = np.unique(np.asarray(videos), return_inverse=True)
    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(int)
    video_labels = np.zeros(len(keys), int)
    video_labels[frame_video] = labels
    video_scores = np.bincount(frame_video, scores, len(keys)) / np.bincount(frame_video, minlength=len(keys))
    v = Videos(video_labels, video_scores[None], scores[None], frame_video, labels)
    return cell(v, "frame", n_boot, seed)


def paired_difference(a: Videos, b: Videos, level: str = "video", n_boot: int = 1000, seed: int = 0) -> Cell:
    """Mean-over-seeds AUC of a minus that of b on the same test videos, with its 95% interval from
    the same resamples for both (a and b must score the same videos in the same order)."""
    if len(a.labels) != len(b.labels) or not np.array_equal(a.labels, b.labels):
        raise ValueError("a paired difference needs both rows scored on the same videos")
    point = seed_aucs(a, np.ones((1, len(a.labels))), level)[0].mean() - seed_aucs(
        b, np.ones((1, len(b.labels))), level)[0].mean()
    counts = stratified_counts(a.labels, n_boot, np.random.default_rng(seed))
    diff = seed_aucs(a, counts, level).mean(1) - seed_aucs(b, counts, level).mean(1)
    lo, hi = np.nanpercentile(diff, [2.5, 97.5])
    return Cell(float(point), float(lo), float(hi), float("nan"), min(len(a.scores), len(b.scores)), len(a.labels))


def align(tables: Sequence[dict[str, float]]) -> tuple[list[str], np.ndarray]:
    """Items (videos or frames) scored in every table, in one sorted order: (keys, (S, K) values)."""
    common = sorted(set.intersection(*(set(t) for t in tables))) if tables else []
    return common, np.array([[t[k] for k in common] for t in tables], dtype=np.float64).reshape(len(tables), len(common))


def contrast(rows: Sequence[Videos], weights: Sequence[float], level: str = "video", n_boot: int = 1000,
             seed: int = 0) -> Cell:
    """sum_i weights[i] * (mean-over-seeds AUC of rows[i]) with its 95% interval, every row scored on the
    same resamples of the same videos: (1, -1) is a paired difference; least-squares weights over x
    give the slope of AUC against x (Fig. 8's trend with the number of training methods)."""
    labels = rows[0].labels
    if any(len(r.labels) != len(labels) or not np.array_equal(r.labels, labels) for r in rows):
        raise ValueError("a contrast needs every row scored on the same videos")
    w = np.asarray(weights, float)
    point = sum(wi * seed_aucs(r, np.ones((1, len(labels))), level)[0].mean() for wi, r in zip(w, rows))
    counts = stratified_counts(labels, n_boot, np.random.default_rng(seed))
    boot = sum(wi * seed_aucs(r, counts, level).mean(1) for wi, r in zip(w, rows))
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    return Cell(float(point), float(lo), float(hi), float("nan"), min(len(r.scores) for r in rows), len(labels))


def slope_weights(xs: Sequence[float]) -> np.ndarray:
    """Weights w with sum_i w_i y_i = the least-squares slope of y against xs."""
    x = np.asarray(xs, float)
    d = x - x.mean()
    return d / float((d**2).sum())


def paired_mean_difference(a: np.ndarray, b: np.ndarray, groups: Sequence, n_boot: int = 1000, seed: int = 0) -> Cell:
    """mean(a) - mean(b) over the same items (a and b in the same order, e.g. the ID probe's held-out
    frames, 1 where it was right), with its 95% interval from resampling the items' groups (their
    videos) with replacement: a drawn video brings all its frames, for both a and b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or len(a) != len(groups):
        raise ValueError("a paired difference needs both scorings of the same items")
    keys, g = np.unique(np.asarray(groups), return_inverse=True)
    sum_a, sum_b = np.bincount(g, a, len(keys)), np.bincount(g, b, len(keys))
    size = np.bincount(g, minlength=len(keys)).astype(float)
    w = np.random.default_rng(seed).multinomial(len(keys), np.full(len(keys), 1 / len(keys)), size=n_boot)
    diff = (w @ sum_a - w @ sum_b) / (w @ size)
    lo, hi = np.nanpercentile(diff, [2.5, 97.5])
    return Cell(float(a.mean() - b.mean()), float(lo), float(hi), float("nan"), 1, len(keys))


def paired_pair_rate_difference(pa: np.ndarray, pb: np.ndarray, n_boot: int = 1000, seed: int = 0) -> Cell:
    """The mean over pairs of distinct items of a pair statistic, a minus b ((K, K) symmetric each, the
    same K items, e.g. whether two identities' regions overlap), with its 95% interval from resampling
    the items with replacement, the same draws for a and b. A resample's pairs are those among its drawn
    items (never an item with its own copy), so the dependence of pairs sharing an item is kept."""
    pa, pb = np.array(pa, float), np.array(pb, float)
    if pa.shape != pb.shape or pa.ndim != 2 or pa.shape[0] != pa.shape[1] or len(pa) < 2:
        raise ValueError("a pair rate needs two (K, K) statistics of the same K >= 2 items")
    np.fill_diagonal(pa, 0.0)
    np.fill_diagonal(pb, 0.0)
    k = len(pa)
    w = np.random.default_rng(seed).multinomial(k, np.full(k, 1 / k), size=n_boot).astype(float)  # (B, K)
    pairs = w.sum(1) ** 2 - (w**2).sum(1)  # ordered pairs of distinct draws
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = (np.einsum("bi,ij,bj->b", w, pa - pb, w)) / pairs
    lo, hi = np.nanpercentile(diff, [2.5, 97.5])
    return Cell(float((pa - pb).sum() / (k * (k - 1))), float(lo), float(hi), float("nan"), 1, k)
