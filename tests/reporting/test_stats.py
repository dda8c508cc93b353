"""The report's statistics against hand-computed cases and a known distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from iid.reporting import stats


def test_weighted_auc_is_the_mann_whitney_auc_with_ties_and_repeats():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(6, 60))
        s = np.round(rng.normal(size=n), 1)  # many ties
        y = np.r_[0, 1, rng.integers(0, 2, n - 2)]
        assert stats.auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        w = rng.integers(0, 3, n).astype(float)
        rep = np.repeat(np.arange(n), w.astype(int))
        if len(set(y[rep])) == 2:  # a weight is how often a resample drew the item
            assert stats.weighted_auc(s, y, w[None])[0] == pytest.approx(roc_auc_score(y[rep], s[rep]), abs=1e-12)


def test_stratified_resamples_keep_the_class_sizes():
    y = np.array([0] * 7 + [1] * 3)
    c = stats.stratified_counts(y, 50, np.random.default_rng(1))
    assert (c[:, y == 0].sum(1) == 7).all() and (c[:, y == 1].sum(1) == 3).all()


def test_interval_covers_the_true_auc_about_95_percent_of_the_time():
    # fakes ~ N(d, 1), reals ~ N(0, 1): the true AUC is Phi(d / sqrt(2))
    d = 1.0
    true_auc = 0.5 * (1 + math.erf(d / 2))
    rng = np.random.default_rng(0)
    hits, widths = 0, []
    trials = 200
    for t in range(trials):
        y = np.r_[np.zeros(60), np.ones(60)].astype(int)
        s = rng.normal(size=120) + d * y
        c = stats.cell(stats.Videos(y, s[None]), n_boot=400, seed=t)
        hits += c.low <= true_auc <= c.high
        widths.append(c.high - c.low)
    assert 0.89 <= hits / trials <= 0.99, hits / trials
    # the width matches the normal approximation (Hanley & McNeil) within a quarter
    a = true_auc
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + 59 * (q1 - a * a) + 59 * (q2 - a * a)) / 3600)
    assert np.mean(widths) == pytest.approx(2 * 1.96 * se, rel=0.25)


def test_cell_mean_is_over_seeds_and_seed_spread_is_separate():
    y = np.array([0, 0, 0, 1, 1, 1])
    seeds = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6],   # AUC 1
                      [0.6, 0.2, 0.3, 0.4, 0.5, 0.1]])  # AUC 4/9
    c = stats.cell(stats.Videos(y, seeds), n_boot=200)
    assert c.mean == pytest.approx((1 + 4 / 9) / 2)
    assert c.seed_sd == pytest.approx(np.std([1, 4 / 9], ddof=1)) and c.seeds == 2 and c.videos == 6


def test_paired_difference_by_hand():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(40), np.ones(40)].astype(int)
    perfect = (y + rng.uniform(0, 0.5, 80))[None]  # every fake above every real: AUC 1
    noisy = rng.normal(size=(1, 80)) + 0.5 * y
    diff = stats.paired_difference(stats.Videos(y, perfect), stats.Videos(y, noisy), n_boot=300)
    assert diff.mean == pytest.approx(1 - stats.auc(noisy[0], y))
    assert diff.low <= diff.mean <= diff.high
    same = stats.paired_difference(stats.Videos(y, noisy), stats.Videos(y, noisy.copy()), n_boot=100)
    assert (same.mean, same.low, same.high) == (0.0, 0.0, 0.0)  # shared resamples: nothing left to vary
    # pairing makes the difference tighter than the two rows' own intervals would suggest
    shifted = noisy + 0.3 * y
    a, b = stats.Videos(y, shifted), stats.Videos(y, noisy)
    paired = stats.paired_difference(a, b, n_boot=400)
    ca, cb = stats.cell(a, n_boot=400), stats.cell(b, n_boot=400)
    assert paired.high - paired.low < (ca.high - ca.low) + (cb.high - cb.low)


def test_frame_level_resamples_whole_videos():
    y = np.array([0, 0, 1, 1])
    video_scores = np.array([[0.1, 0.2, 0.8, 0.9]])
    frame_video = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    frame_scores = np.array([[0.1, 0.2, 0.2, 0.3, 0.7, 0.8, 0.9, 0.95]])
    v = stats.Videos(y, video_scores, frame_scores, frame_video, y[frame_video])
    c = stats.cell(v, level="frame", n_boot=100)
    assert c.mean == pytest.approx(1.0) and c.videos == 4


def test_auc_counts_ties_half_and_is_nan_without_both_classes():
    assert stats.auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert stats.auc(np.array([0.9, 0.8, 0.1, 0.2]), np.array([0, 0, 1, 1])) == 0.0
    assert stats.auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    assert np.isnan(stats.auc(np.array([0.5]), np.array([1])))


def test_frame_cell_resamples_videos_so_repeated_frames_do_not_narrow_the_interval():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(20), np.ones(20)].astype(int)
    scores = rng.normal(size=40) + 0.8 * labels
    once = stats.frame_cell(scores, labels, np.arange(40), n_boot=500)
    five = stats.frame_cell(np.repeat(scores, 5), np.repeat(labels, 5), np.repeat(np.arange(40), 5), n_boot=500)
    assert once.mean == pytest.approx(stats.auc(scores, labels)) and five.mean == pytest.approx(once.mean)
    assert (five.low, five.high) == pytest.approx((once.low, once.high))  # 5 copies are one draw, not five
    assert once.videos == 40 and once.low < once.mean < once.high


def test_contrast_is_the_paired_difference_and_gives_slopes():
    rng = np.random.default_rng(5)
    y = np.r_[np.zeros(30), np.ones(30)].astype(int)
    rows = [stats.Videos(y, (k * 0.3 * y + rng.uniform(size=(2, 60)))) for k in range(4)]
    pair = stats.contrast([rows[2], rows[0]], [1, -1], n_boot=200)
    diff = stats.paired_difference(rows[2], rows[0], n_boot=200)
    assert (pair.mean, pair.low, pair.high) == pytest.approx((diff.mean, diff.low, diff.high))
    assert stats.slope_weights([1, 2, 3, 5]) @ (2 * np.array([1, 2, 3, 5]) + 1) == pytest.approx(2.0)
    aucs = [np.mean([stats.auc(s, y) for s in r.scores]) for r in rows]
    slope = stats.contrast(rows, stats.slope_weights([1, 2, 3, 4]), n_boot=200)
    assert slope.mean == pytest.approx(np.polyfit([1, 2, 3, 4], aucs, 1)[0]) and slope.low < slope.mean < slope.high
    with pytest.raises(ValueError):
        stats.contrast([rows[0], stats.Videos(y[:-2], rows[1].scores[:, :-2])], [1, -1])
