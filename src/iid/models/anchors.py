"""Default anchors of the Artifact Detection Module, SSD box encoding and anchor matching.

Boxes come in two forms: *centre form* (cx, cy, w, h) for anchors and encoded offsets, and
*corner form* (x0, y0, x1, y1) for artifact boxes; all coordinates are normalised by the image size,
so a box covering the whole 224x224 image is (0, 0, 1, 1).

Anchor layout (docs/reference.md; the reference code's `configs/caddm_train.cfg`): four maps of 7x7, 5x5, 3x3, 1x1
cells with steps 32, 45, 75, 224 px and sizes [min, max] = [40, 80], [80, 120], [120, 160],
[224, 224] px. Each cell has 2 anchors centred at ((j+0.5)*step, (i+0.5)*step): first min x max, then
max x min (w x h). Order: map by map, cells row-major (i = row, j = column), then the 2 anchors;
the ADM heads emit predictions in exactly this order. 2 * (49 + 25 + 9 + 1) = 168 anchors.
"""

from __future__ import annotations

import torch
from torch import Tensor

FEATURE_MAPS: tuple[int, ...] = (7, 5, 3, 1)
STEPS_PX: tuple[float, ...] = (32.0, 45.0, 75.0, 224.0)
SIZES_PX: tuple[tuple[float, float], ...] = ((40.0, 80.0), (80.0, 120.0), (120.0, 160.0), (224.0, 224.0))
ANCHORS_PER_CELL = 2
REFERENCE_SIZE = 224.0
VARIANCES: tuple[float, float] = (0.1, 0.2)


def num_anchors() -> int:
    """Number of default anchors (168)."""
    return ANCHORS_PER_CELL * sum(f * f for f in FEATURE_MAPS)


def default_anchors(image_size: int = 224) -> Tensor:
    """The 168 default anchors as (cx, cy, w, h) normalised to [0, 1], shape (168, 4) float32.

    Steps and sizes are pixel values at 224 and scale with `image_size`; the anchors in normalised
    coordinates are therefore the same for every image size (the feature maps are fixed at 7/5/3/1).
    Anchors are not clipped: the border anchors of the 7x7 map reach outside the image, as in the
    reference (its `clip` clamps cx, cy, w, h, which changes nothing here).
    """
    if image_size <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    scale = image_size / REFERENCE_SIZE
    rows: list[Tensor] = []
    for cells, step, (lo, hi) in zip(FEATURE_MAPS, STEPS_PX, SIZES_PX):
        idx = torch.arange(cells, dtype=torch.float64)
        centres = (idx + 0.5) * step * scale / image_size  # (cells,)
        cy, cx = torch.meshgrid(centres, centres, indexing="ij")  # row-major cells
        cx, cy = cx.reshape(-1, 1), cy.reshape(-1, 1)  # (cells*cells, 1)
        lo_n, hi_n = lo * scale / image_size, hi * scale / image_size
        wh = torch.tensor([[lo_n, hi_n], [hi_n, lo_n]], dtype=torch.float64)  # (2, 2): min x max, max x min
        per_cell = torch.cat(
            [
                torch.cat([cx, cy], 1)[:, None, :].expand(-1, ANCHORS_PER_CELL, 2),
                wh[None].expand(cx.shape[0], -1, -1),
            ],
            dim=2,
        )  # (cells*cells, 2, 4)
        rows.append(per_cell.reshape(-1, 4))
    return torch.cat(rows).float()


def centre_to_corners(boxes: Tensor) -> Tensor:
    """(..., 4) cx,cy,w,h -> (..., 4) x0,y0,x1,y1."""
    c, wh = boxes[..., :2], boxes[..., 2:]
    return torch.cat([c - wh / 2, c + wh / 2], dim=-1)


def corners_to_centre(boxes: Tensor) -> Tensor:
    """(..., 4) x0,y0,x1,y1 -> (..., 4) cx,cy,w,h."""
    p0, p1 = boxes[..., :2], boxes[..., 2:]
    return torch.cat([(p0 + p1) / 2, p1 - p0], dim=-1)


def iou(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """Pairwise IoU of corner-form boxes: (A, 4) x (K, 4) -> (A, K)."""
    lt = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    rb = torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)  # (A, K)
    area_a = (boxes_a[:, 2:] - boxes_a[:, :2]).clamp(min=0).prod(dim=-1)  # (A,)
    area_b = (boxes_b[:, 2:] - boxes_b[:, :2]).clamp(min=0).prod(dim=-1)  # (K,)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union.clamp(min=torch.finfo(union.dtype).tiny)


def encode(boxes: Tensor, anchors: Tensor, variances: tuple[float, float] = VARIANCES) -> Tensor:
    """SSD offsets of corner-form `boxes` (..., K, 4) relative to centre-form `anchors` (K, 4).

    t_cx = (g_cx - d_cx) / (v0 * d_w), t_cy likewise with d_h, t_w = log(g_w / d_w) / v1, t_h likewise.
    """
    g = corners_to_centre(boxes)
    # a degenerate (zero-size) box would give log(0) = -inf; it never occurs from MFS but must not NaN a run
    g_wh = g[..., 2:].clamp(min=1e-6)
    t_c = (g[..., :2] - anchors[..., :2]) / (variances[0] * anchors[..., 2:])
    t_wh = torch.log(g_wh / anchors[..., 2:]) / variances[1]
    return torch.cat([t_c, t_wh], dim=-1)


def decode(offsets: Tensor, anchors: Tensor, variances: tuple[float, float] = VARIANCES) -> Tensor:
    """Inverse of `encode`: offsets (..., K, 4) and anchors (K, 4) -> corner-form boxes (..., K, 4)."""
    c = anchors[..., :2] + offsets[..., :2] * variances[0] * anchors[..., 2:]
    wh = anchors[..., 2:] * torch.exp(offsets[..., 2:] * variances[1])
    return torch.cat([c - wh / 2, c + wh / 2], dim=-1)


def match(
    boxes: Tensor,
    has_box: Tensor,
    anchors: Tensor,
    threshold: float = 0.5,
    force_best: bool = True,
    variances: tuple[float, float] = VARIANCES,
) -> tuple[Tensor, Tensor]:
    """Assign each anchor of each image to its artifact box (one box per image, batched).

    boxes: (B, 4) x0y0x1y1 in [0, 1]; has_box: (B,) bool (False for real images); anchors: (K, 4).
    Returns loc_targets (B, K, 4) encoded offsets (zeros where has_box is False) and
    labels (B, K) int64: 1 artifact anchor, 0 background.

    An anchor is positive when its IoU with the box is *greater than* `threshold` (the paper's
    wording; the reference uses >=, identical except on exact ties). With `force_best` the box's
    best-overlapping anchor is positive whatever its IoU (the reference's bipartite step), so every
    fake image trains at least one anchor; we force it only when that IoU is > 0 (a box outside all
    anchors stays unmatched instead of regressing from an unrelated anchor). Ties in the best IoU
    (e.g. the two identical 224x224 anchors) force the first; both exceed any threshold < 1 anyway.
    """
    has_box = has_box.to(torch.bool)
    # real images may carry garbage boxes: replace them before any arithmetic so nothing NaNs
    whole = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=boxes.dtype, device=boxes.device)
    safe = torch.where(has_box[:, None], boxes, whole)  # (B, 4)
    overlaps = iou(safe, centre_to_corners(anchors))  # (B, K)
    positive = overlaps > threshold
    if force_best:
        best_iou, best_idx = overlaps.max(dim=1)  # (B,)
        forced = torch.zeros_like(positive)
        forced.scatter_(1, best_idx[:, None], (best_iou > 0)[:, None])
        positive = positive | forced
    positive = positive & has_box[:, None]
    loc_targets = encode(safe[:, None, :].expand(-1, anchors.shape[0], -1), anchors, variances)  # (B, K, 4)
    loc_targets = loc_targets * has_box[:, None, None]
    return loc_targets, positive.long()
