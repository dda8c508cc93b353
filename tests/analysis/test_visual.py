"""The ADM's best box: decoding, score threshold and NMS keep the known best box."""

from __future__ import annotations

import numpy as np
import torch

from iid.analysis.visual import best_boxes, box_iou
from iid.models.anchors import default_anchors, encode


def predictions(boxes: dict[int, tuple[list[float], float]], k: int = 168):
    """loc/conf of one image whose anchor i predicts box boxes[i][0] with artifact score boxes[i][1];
    every other anchor predicts its own anchor box with score 0.01."""
    anchors = default_anchors()
    target = torch.tensor([0.0, 0.0, 1.0, 1.0]).repeat(k, 1)
    score = torch.full((k,), 0.01)
    for i, (b, s) in boxes.items():
        target[i], score[i] = torch.tensor(b), s
    loc = encode(target, anchors)
    p = score.clamp(1e-6, 1 - 1e-6)
    conf = torch.stack([torch.zeros(k), torch.log(p / (1 - p))], -1)  # softmax(...)[1] == p
    return loc[None], conf[None]


def test_nms_keeps_the_known_best_box():
    best = [0.30, 0.40, 0.60, 0.70]
    loc, conf = predictions({
        10: ([0.31, 0.41, 0.61, 0.69], 0.80),  # a near-duplicate, lower score: suppressed
        50: (best, 0.95),
        90: ([0.05, 0.05, 0.20, 0.20], 0.90),  # elsewhere, lower score: kept by NMS, but not the best
        120: ([0.29, 0.40, 0.60, 0.71], 0.70),
    })
    (box, score), = best_boxes(loc, conf, score_threshold=0.5, nms_iou=0.3)
    assert np.allclose(box, best, atol=1e-5) and abs(score - 0.95) < 1e-5


def test_nothing_above_threshold_gives_no_box_and_batches_are_independent():
    loc1, conf1 = predictions({5: ([0.1, 0.1, 0.4, 0.4], 0.4)})
    loc2, conf2 = predictions({7: ([0.5, 0.5, 0.9, 0.9], 0.6)})
    out = best_boxes(torch.cat([loc1, loc2]), torch.cat([conf1, conf2]), score_threshold=0.5)
    assert out[0] is None
    assert np.allclose(out[1][0], [0.5, 0.5, 0.9, 0.9], atol=1e-5)


def test_box_iou():
    assert box_iou(np.array([0, 0, 1, 1.0]), np.array([0, 0, 1, 1.0])) == 1.0
    assert abs(box_iou(np.array([0, 0, 2, 2.0]), np.array([1, 1, 3, 3.0])) - 1 / 7) < 1e-9
    assert box_iou(np.array([0, 0, 1, 1.0]), np.array([2, 2, 3, 3.0])) == 0.0
