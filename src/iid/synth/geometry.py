"""68 facial landmarks (iBUG 300-W order) of an identity under an expression, and the head pose.

Points live in the canonical frame: an S x S canvas with the head centred; a per-frame similarity
transform (the pose) maps them into the video frame. iBUG order: jaw 0-16, brows 17-26 (17-21 on
the image left), nose bridge 27-30, nostrils 31-35, eyes 36-41 / 42-47, outer lips 48-59, inner 60-67.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iid.synth.identity import Identity


@dataclass(frozen=True)
class Expression:
    """One frame's expression: eye openness 0 (closed) .. 1, mouth opening 0 .. 1, smile, gaze."""

    eyes: float = 1.0
    mouth: float = 0.0
    smile: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0


NEUTRAL = Expression()


def eye_line(size: int) -> float:
    """Canonical y of the eye line on an S x S canvas (faces are drawn for S=256 and scaled)."""
    return 0.44 * size


def _scale(size: int) -> float:
    return size / 256.0


def landmarks(ident: Identity, expr: Expression, size: int) -> np.ndarray:
    """(68, 2) float32 canonical pixel (x, y) of `ident` showing `expr`."""
    k = _scale(size)
    cx, y0 = size / 2.0, eye_line(size) + ident.eye_y * k
    pts = np.zeros((68, 2), np.float64)

    # jaw: superellipse from ear to ear through the chin; squareness and chin pointiness as factors
    n = 2.0 + 2.0 * ident.jaw_square
    th = np.linspace(0.0, np.pi, 17)
    c, s = np.cos(th), np.sin(th)
    w = ident.face_w * k * (1.0 - 0.32 * ident.chin * s**6)
    y_top = eye_line(size) - 6 * k  # the outline does not follow the eyes: a swap keeps the target's
    pts[0:17, 0] = cx - w * np.sign(c) * np.abs(c) ** (2 / n)
    pts[0:17, 1] = y_top + (ident.face_h * k + 6 * k) * np.abs(s) ** (2 / n)

    # eyes: centres, corners tilted, lids opened by the expression
    ew, eo = ident.eye_w * k, ident.eye_open * k * max(expr.eyes, 0.0)
    for side, (ex, idx) in enumerate(((cx - ident.eye_dx * k, 36), (cx + ident.eye_dx * k, 42))):
        sgn = -1 if side == 0 else 1  # outer direction
        tilt = ident.eye_tilt * ew
        outer = (ex + sgn * ew, y0 - tilt)
        inner = (ex - sgn * ew, y0 + 0.3 * tilt)
        up_o = (ex + sgn * ew / 3, y0 - eo - 0.6 * tilt)
        up_i = (ex - sgn * ew / 3, y0 - eo)
        lo_i = (ex - sgn * ew / 3, y0 + 0.65 * eo + 0.1 * k)
        lo_o = (ex + sgn * ew / 3, y0 + 0.65 * eo - 0.3 * tilt + 0.1 * k)
        if side == 0:  # 36 outer, 37, 38 upper, 39 inner, 40, 41 lower
            pts[idx : idx + 6] = [outer, up_o, up_i, inner, lo_i, lo_o]
        else:  # 42 inner, 43, 44 upper, 45 outer, 46, 47 lower
            pts[idx : idx + 6] = [inner, up_i, up_o, outer, lo_o, lo_i]

    # brows: 5 points each, outer to inner on the left, inner to outer on the right
    u = np.linspace(0.0, 1.0, 5)
    for side in (0, 1):
        ex = cx + (-1 if side == 0 else 1) * ident.eye_dx * k
        xs = ex + (-1 if side == 0 else 1) * (1.15 * ew - 2.1 * ew * u)  # outer -> inner
        ys = y0 - ident.brow_gap * k - ident.brow_arch * k * np.sin(np.pi * (0.25 + 0.75 * u))
        ys = ys + ident.brow_tilt * 12 * k * (1 - 2 * u)
        if side == 0:
            pts[17:22] = np.stack([xs, ys], 1)
        else:
            pts[22:27] = np.stack([xs, ys], 1)[::-1]

    # nose: bridge from between the eyes to the tip, then nostril base left to right
    tip = y0 + ident.nose_len * k
    pts[27:31, 0] = cx
    pts[27:31, 1] = np.linspace(y0 - 2 * k, tip, 4)
    nw = ident.nose_w * k
    pts[31:36, 0] = cx + nw * np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    pts[31:36, 1] = tip + k * np.array([2.0, 4.5, 5.5, 4.5, 2.0])

    # mouth: corners lifted by a smile, inner lips parted by the opening (lower lip drops)
    my = tip + ident.mouth_y * k + 5 * k
    mw = ident.mouth_w * k * (1 + 0.12 * expr.smile)
    gap = 16 * k * max(expr.mouth, 0.0)
    lu, ll = ident.lip_upper * k, ident.lip_lower * k
    cy_corner = my - 4 * k * expr.smile
    up, lo = my - 0.3 * gap, my + 0.7 * gap
    pts[48] = (cx - mw, cy_corner)
    pts[54] = (cx + mw, cy_corner)
    pts[49:54] = [
        (cx - 0.6 * mw, up - 0.85 * lu),
        (cx - 0.22 * mw, up - 1.1 * lu),
        (cx, up - 0.85 * lu),
        (cx + 0.22 * mw, up - 1.1 * lu),
        (cx + 0.6 * mw, up - 0.85 * lu),
    ]
    pts[55:60] = [
        (cx + 0.6 * mw, lo + 0.8 * ll),
        (cx + 0.22 * mw, lo + ll),
        (cx, lo + ll),
        (cx - 0.22 * mw, lo + ll),
        (cx - 0.6 * mw, lo + 0.8 * ll),
    ]
    pts[60] = (cx - 0.85 * mw, cy_corner)
    pts[64] = (cx + 0.85 * mw, cy_corner)
    pts[61:64] = [(cx - 0.45 * mw, up - 0.1 * lu), (cx, up), (cx + 0.45 * mw, up - 0.1 * lu)]
    pts[65:68] = [(cx + 0.45 * mw, lo), (cx, lo), (cx - 0.45 * mw, lo)]
    return pts.astype(np.float32)


def pose_matrix(tx: float, ty: float, scale: float, angle: float, size: int) -> np.ndarray:
    """(2, 3) similarity canonical -> frame: rotate/scale about the canvas centre, then translate."""
    c = size / 2.0
    ca, sa = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[ca, -sa, c - ca * c + sa * c + tx], [sa, ca, c - sa * c - ca * c + ty]], np.float32)


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (..., 2) points."""
    return (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)
