"""ID overlap: separated clusters overlap nobody, identical clusters overlap everybody."""

from __future__ import annotations

import numpy as np

from iid.analysis.overlap import iou_matrix, overlap_counts, pca_2d

THRESHOLDS = (0.1, 0.3, 0.5, 0.9)


def clusters(centres: np.ndarray, per: int, spread: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    pts = np.concatenate([c + rng.uniform(-spread, spread, (per, 2)) for c in centres])
    ident = np.repeat(np.array([f"id{i}" for i in range(len(centres))], dtype=object), per)
    return pts, ident


def test_well_separated_clusters_overlap_nobody():
    pts, ident = clusters(np.array([[0, 0], [10, 0], [0, 10], [10, 10], [20, 20]]), 5, 1.0)
    names, counts = overlap_counts(pts, ident, THRESHOLDS)
    assert len(names) == 5
    for t in THRESHOLDS:
        assert (counts[t] == 0).all()


def test_identical_clusters_overlap_everybody():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(6, 2))
    pts = np.tile(base, (4, 1))  # 4 identities with exactly the same points
    ident = np.repeat(np.array(["a", "b", "c", "d"], dtype=object), 6)
    _, counts = overlap_counts(pts, ident, THRESHOLDS)
    for t in THRESHOLDS:
        assert (counts[t] == 3).all()  # each overlaps all 3 others, never itself


def test_partial_overlap_depends_on_threshold():
    # unit squares shifted by 0.5: IoU = 0.5 / 1.5 = 1/3
    pts = np.array([[0, 0], [1, 1], [0.5, 0], [1.5, 1]], float)
    ident = np.array(["a", "a", "b", "b"], dtype=object)
    _, counts = overlap_counts(pts, ident, (0.3, 0.34))
    assert counts[0.3].tolist() == [1, 1] and counts[0.34].tolist() == [0, 0]


def test_iou_matrix_and_degenerate_boxes():
    boxes = np.array([[0, 0, 2, 2], [1, 1, 3, 3], [5, 5, 5, 5]], float)
    iou = iou_matrix(boxes)
    assert np.isclose(iou[0, 1], 1 / 7) and iou[0, 0] == 1.0
    assert iou[2, 2] == 0.0 and iou[0, 2] == 0.0  # a single point has no area


def test_pca_keeps_the_dominant_directions():
    rng = np.random.default_rng(0)
    x = np.zeros((200, 10))
    x[:, 3] = rng.normal(size=200) * 10
    x[:, 7] = rng.normal(size=200) * 3
    x += rng.normal(size=x.shape) * 0.01
    p = pca_2d(x)
    assert p.shape == (200, 2)
    assert abs(np.corrcoef(p[:, 0], x[:, 3])[0, 1]) > 0.99 and abs(np.corrcoef(p[:, 1], x[:, 7])[0, 1]) > 0.99


def test_overlap_pairs_agree_with_the_counts_per_threshold():
    from iid.analysis.overlap import overlap_pairs, rectangles

    rng = np.random.default_rng(4)
    pts, ident = clusters(rng.uniform(0, 3, (7, 2)), 6, 1.0, seed=2)  # crowded: some pairs overlap, some do not
    names, counts = overlap_counts(pts, ident, THRESHOLDS)
    share = overlap_pairs(rectangles(pts, ident)[1], THRESHOLDS)
    assert share.shape == (7, 7) and np.allclose(share, share.T) and (np.diag(share) == 0).all()
    # a pair's share of thresholds, summed over partners and times the thresholds, is the count summed over thresholds
    assert np.allclose(share.sum(1) * len(THRESHOLDS), sum(counts[t] for t in THRESHOLDS))
    assert 0 < share.mean() < 1
