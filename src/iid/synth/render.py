"""Drawing a face from its 68 landmarks and appearance with cv2, fast enough for thousands of frames.

The static part of a head (skin with its texture, ears, nose, brows, hair, beard, moles) is drawn
once per identity on a canonical canvas (`HeadBase`); per frame only the eyes, mouth and glasses are
drawn on a copy, and the canvas is warped into the frame by the pose and lit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from iid.synth.geometry import NEUTRAL, Expression, apply, landmarks
from iid.synth.identity import Identity

_SHIFT = 4  # sub-pixel bits for cv2 polygon drawing
_ONE = 1 << _SHIFT


def _p(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts, np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _fill(img: np.ndarray, pts: np.ndarray, color) -> None:
    cv2.fillPoly(img, [_p(pts)], color, cv2.LINE_AA, _SHIFT)


def _line(img: np.ndarray, pts: np.ndarray, color, thick: int, closed: bool = False) -> None:
    cv2.polylines(img, [_p(pts)], closed, color, max(int(thick), 1), cv2.LINE_AA, _SHIFT)


def _ellipse(img, center, axes, angle, color, thick=-1) -> None:
    c = (int(round(center[0] * _ONE)), int(round(center[1] * _ONE)))
    a = (max(int(round(axes[0] * _ONE)), 1), max(int(round(axes[1] * _ONE)), 1))
    cv2.ellipse(img, c, a, float(angle), 0, 360, color, thick, cv2.LINE_AA, _SHIFT)


def _col(c, f: float = 1.0) -> tuple[float, float, float]:
    return tuple(float(np.clip(v * f, 0, 255)) for v in c)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """(size, size) float32 noise in [-1, 1] with about `cells` blobs across: upsampled random grid."""
    g = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC).clip(-1, 1)


def _forehead_arc(ident: Identity, lm: np.ndarray, k: float, extra: float = 0.0) -> np.ndarray:
    """Points from jaw[16] over the top of the head back to jaw[0] (the skull outline)."""
    # anchored on the jaw only, so a swapped inner face (other brows) keeps the target's skull
    cx = (lm[0, 0] + lm[16, 0]) / 2
    base_y = (lm[0, 1] + lm[16, 1]) / 2
    top = base_y - (16 + ident.forehead + extra) * k
    half = (lm[16, 0] - lm[0, 0]) / 2 + extra * k * 0.6
    th = np.linspace(0, np.pi, 15)
    xs = cx + half * np.cos(th)
    ys = base_y - (base_y - top) * np.sin(th) ** 0.8
    return np.stack([xs, ys], 1)


@dataclass
class HeadBase:
    """Static head of one identity on the canonical canvas: RGB uint8 (S, S, 3) and alpha uint8."""

    ident: Identity
    size: int
    rgb: np.ndarray
    alpha: np.ndarray
    skin: tuple[float, float, float]  # mean rendered skin colour (for closed lids)
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of alpha > 0 on the canvas


def draw_head_base(ident: Identity, size: int) -> HeadBase:
    """Draw everything of a head that does not move with the expression."""
    k = size / 256.0
    rng = np.random.default_rng(ident.seed)
    lm = landmarks(ident, NEUTRAL, size)
    rgb = np.zeros((size, size, 3), np.uint8)
    alpha = np.zeros((size, size), np.uint8)
    skin, hair = ident.skin, ident.hair
    skull = np.concatenate([lm[0:17], _forehead_arc(ident, lm, k)], 0)

    # hair behind the head (long hair falls beside the face)
    if ident.hair_style in ("long", "bun"):
        half = (lm[16, 0] - lm[0, 0]) / 2 + (ident.hair_volume + 8) * k
        cx = (lm[0, 0] + lm[16, 0]) / 2
        bottom = lm[8, 1] + (25 if ident.hair_style == "long" else -10) * k
        top = skull[:, 1].min() - ident.hair_volume * k
        box = np.array([[cx - half, top + 30 * k], [cx + half, top + 30 * k], [cx + half * 0.9, bottom], [cx - half * 0.9, bottom]])
        for a in (rgb, alpha):
            color = _col(hair, 0.8) if a is rgb else 255
            _fill(a, box, color)
            _ellipse(a, (cx, top + 32 * k), (half, 34 * k), 0, color)
        if ident.hair_style == "bun":
            for a in (rgb, alpha):
                _ellipse(a, (cx, top - 6 * k), (16 * k, 13 * k), 0, _col(hair) if a is rgb else 255)

    # neck to the bottom of the canvas
    nx = (lm[0, 0] + lm[16, 0]) / 2
    nw = 0.5 * (lm[16, 0] - lm[0, 0]) * 0.62
    neck = np.array([[nx - nw, lm[4, 1]], [nx + nw, lm[12, 1]], [nx + nw * 1.1, size], [nx - nw * 1.1, size]])
    _fill(rgb, neck, _col(skin, 0.78))
    _fill(alpha, neck, 255)

    # ears
    for j, sgn in ((1, -1), (15, 1)):
        c = (lm[j, 0] + sgn * 3 * k, lm[j, 1] - 2 * k)
        _ellipse(rgb, c, (7 * k * ident.ear, 13 * k * ident.ear), 0, _col(skin, 0.88))
        _ellipse(alpha, c, (7 * k * ident.ear, 13 * k * ident.ear), 0, 255)

    # face skin with texture, blush and edge shading (drawn once, so it may be expensive)
    face_mask = np.zeros((size, size), np.uint8)
    _fill(face_mask, skull, 255)
    _fill(alpha, skull, 255)
    tex = 1.0 + ident.skin_texture * _smooth_noise(rng, size, 10)
    dist = cv2.distanceTransform((face_mask > 127).astype(np.uint8), cv2.DIST_L2, 3)
    tex *= 0.82 + 0.18 * np.clip(dist / (18 * k), 0, 1)  # darker towards the outline
    tex3 = np.repeat(tex[..., None], 3, axis=2)
    redden = np.array([0.05, -0.18, -0.14], np.float32)
    for sgn in (-1, 1):  # cheeks
        cheek = np.zeros((size, size), np.float32)
        _ellipse(cheek, (lm[30, 0] + sgn * 0.55 * (lm[16, 0] - lm[0, 0]) / 2, lm[30, 1]), (14 * k, 9 * k), 0, 1.0)
        cheek = cv2.GaussianBlur(cheek, (0, 0), 5 * k)
        tex3 *= 1 + ident.blush * cheek[..., None] * redden
    face_col = np.asarray(skin, np.float32)[None, None, :] * tex3
    m = (face_mask.astype(np.float32) / 255)[..., None]
    rgb[:] = np.clip(rgb * (1 - m) + face_col * m, 0, 255).astype(np.uint8)

    # freckles and moles: small dark dots inside the face (big enough to survive compression)
    n_freckles = int(ident.freckles * 60)
    if n_freckles:
        ys, xs = np.nonzero(face_mask[int(lm[29, 1]) - int(20 * k) : int(lm[33, 1]), :] > 200)
        idx = rng.choice(len(xs), size=min(n_freckles, len(xs)), replace=False)
        for i in idx:
            cv2.circle(rgb, (int(xs[i]), int(ys[i] + lm[29, 1] - 20 * k)), max(1, int(1.3 * k)), _col(skin, 0.72), -1, cv2.LINE_AA)
    for _ in range(ident.moles):
        j = rng.integers(0, 17)
        p = lm[j] + (lm[30] - lm[j]) * rng.uniform(0.2, 0.6)
        _ellipse(rgb, p, (2.2 * k, 2.2 * k), 0, _col(skin, 0.4))

    # beard on the lower face
    if ident.beard > 0:
        beard = np.zeros((size, size), np.uint8)
        top = lm[33, 1] + 3 * k
        poly = np.concatenate([lm[2:15], [[lm[14, 0], top], [lm[2, 0], top]]], 0)
        _fill(beard, poly, 255)
        beard = cv2.GaussianBlur(beard, (0, 0), 2 * k).astype(np.float32)[..., None] / 255 * ident.beard
        noise = 0.85 + 0.3 * rng.uniform(0, 1, (size, size, 1)).astype(np.float32)
        rgb[:] = np.clip(rgb * (1 - beard) + np.asarray(hair, np.float32) * noise * beard, 0, 255).astype(np.uint8)

    # nose: shaded bridge side, tip, nostrils
    _line(rgb, lm[27:31] + [3 * k, 0], _col(skin, 0.8), int(2 * k))
    _ellipse(rgb, lm[30] + [0, 1 * k], (ident.nose_w * 0.45 * k, 5 * k), 0, _col(skin, 1.06))
    for j in (32, 34):
        _ellipse(rgb, lm[j] - [0, 1 * k], (3.2 * k, 2 * k), 0, _col(skin, 0.45))
    _line(rgb, lm[31:36], _col(skin, 0.7), 1)

    # brows: a band from the brow points down by the thickness
    brow_col = _col(hair, 0.7) if ident.hair_style != "bald" else _col((60, 45, 35))
    for a, b in ((17, 22), (22, 27)):
        top = lm[a:b]
        band = np.concatenate([top, top[::-1] + [0, ident.brow_thick * k]], 0)
        _fill(rgb, band, brow_col)

    # hair on top of the head: outline of the hair volume minus a style-dependent hairline
    if ident.hair_style != "bald":
        cx = (lm[0, 0] + lm[16, 0]) / 2
        brow_top = lm[17:27, 1].min()
        hx = np.linspace(lm[0, 0] - 2 * k, lm[16, 0] + 2 * k, 21)
        t = (hx - cx) / ((lm[16, 0] - lm[0, 0]) / 2)
        if ident.hair_style == "fringe":
            hy = brow_top - 6 * k + 4 * k * np.abs(t) ** 2
        elif ident.hair_style == "side":
            hy = brow_top - ident.forehead * k * (0.25 + 0.35 * (t + 1) / 2)
        else:  # short, long, bun: rounded hairline
            hy = brow_top - ident.forehead * k * 0.55 + 18 * k * np.abs(t) ** 3
        hy = np.minimum(hy, lm[0, 1] - 4 * k)
        outer = _forehead_arc(ident, lm, k, ident.hair_volume)
        poly = np.concatenate([np.stack([hx, hy], 1), outer[::-1][::-1]], 0)
        layer = np.zeros((size, size), np.uint8)
        _fill(layer, poly, 255)
        _fill(layer, outer, 255)
        hairline = np.zeros((size, size), np.uint8)
        _fill(hairline, np.concatenate([np.stack([hx, hy], 1), [[hx[-1], size], [hx[0], size]]], 0), 255)
        layer[(hairline > 0) & (face_mask > 0)] = 0
        streak = 0.85 + 0.15 * np.sin(np.arange(size)[None, :] * 0.9 * (1 + rng.uniform(0, 1)) + _smooth_noise(rng, size, 6) * 6)
        hl = (layer.astype(np.float32) / 255)[..., None]
        hcol = np.asarray(hair, np.float32)[None, None] * streak[..., None]
        rgb[:] = np.clip(rgb * (1 - hl) + hcol * hl, 0, 255).astype(np.uint8)
        np.maximum(alpha, layer, out=alpha)

    skin_mean = tuple(float(v) for v in rgb[face_mask > 200].mean(0)) if (face_mask > 200).any() else skin
    ys, xs = np.nonzero(alpha)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return HeadBase(ident, size, rgb, alpha, skin_mean, box)


def draw_expression(base: HeadBase, expr: Expression) -> tuple[np.ndarray, np.ndarray]:
    """Canonical RGB uint8 (S, S, 3) with eyes, mouth and glasses drawn, and the (68, 2) landmarks."""
    ident, size = base.ident, base.size
    k = size / 256.0
    lm = landmarks(ident, expr, size)
    img = base.rgb.copy()
    lid = _col(ident.skin, 0.35)
    for a in (36, 42):
        eye = lm[a : a + 6]
        if expr.eyes > 0.15:
            _fill(img, eye, (235, 232, 225))
            # iris clipped to the eye opening: draw in a small ROI
            x0, y0 = np.floor(eye.min(0) - 2).astype(int)
            x1, y1 = np.ceil(eye.max(0) + 2).astype(int)
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size), min(y1, size)
            roi = img[y0:y1, x0:x1]
            m = np.zeros(roi.shape[:2], np.uint8)
            _fill(m, eye - [x0, y0], 255)
            iris = roi.copy()
            c = eye.mean(0) + [expr.gaze_x * ident.eye_w * 0.35 * k, expr.gaze_y * 2 * k] - [x0, y0]
            _ellipse(iris, c, (ident.iris_r * k, ident.iris_r * k), 0, ident.iris)
            _ellipse(iris, c, (ident.iris_r * 0.45 * k, ident.iris_r * 0.45 * k), 0, (15, 12, 12))
            w = m.astype(np.float32)[..., None] / 255
            roi[:] = (roi * (1 - w) + iris * w).astype(np.uint8)
            _line(img, eye[[0, 1, 2, 3]], lid, ident.lash + int(k))  # upper lid, corner to corner
            _line(img, eye[[3, 4, 5, 0]], _col(ident.skin, 0.7), 1)
        else:
            _line(img, eye[[0, 1, 2, 3]], lid, ident.lash + int(k))

    outer, inner = lm[48:60], lm[60:68]
    _fill(img, outer, ident.lip)
    if expr.mouth > 0.08:
        _fill(img, inner, (55, 18, 22))
        teeth = np.concatenate([inner[[0, 1, 2, 3, 4]], inner[[4, 3, 2, 1, 0]] + [0, min(4.5 * k, (lm[66, 1] - lm[62, 1]) * 0.4)]], 0)
        _fill(img, teeth, (238, 236, 228))
    else:
        _line(img, inner[[0, 1, 2, 3, 4]], _col(ident.lip, 0.5), int(max(1, 1.5 * k)))

    if ident.glasses:
        for a in (36, 42):
            c = lm[a : a + 6].mean(0)
            ax = (ident.eye_w * 1.35 * k, ident.eye_w * (0.95 if ident.glasses == 1 else 0.75) * k)
            if ident.glasses == 1:
                _ellipse(img, c, ax, 0, ident.glasses_color, int(2 * k + 1))
            else:
                box = np.array([[c[0] - ax[0], c[1] - ax[1]], [c[0] + ax[0], c[1] - ax[1]], [c[0] + ax[0], c[1] + ax[1]], [c[0] - ax[0], c[1] + ax[1]]])
                _line(img, box, ident.glasses_color, int(2 * k + 1), closed=True)
        mid = (lm[39] + lm[42]) / 2
        _line(img, np.array([lm[39] + [ident.eye_w * 0.3 * k, -3 * k], mid - [0, 4 * k], lm[42] - [ident.eye_w * 0.3 * k, 3 * k]]), ident.glasses_color, int(2 * k))
    return img, lm


def light_map(size: int, gain: float, strength: float, angle: float, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """(h, w) float32 multiplicative lighting over `box` (x0, y0, x1, y1; default the whole frame):
    overall gain times a directional ramp across the frame."""
    x0, y0, x1, y1 = box or (0, 0, size, size)
    half = size / 2
    rx = (np.arange(x0, x1, dtype=np.float32) - half) / half
    ry = (np.arange(y0, y1, dtype=np.float32) - half) / half
    return (gain * (1.0 + strength * (np.cos(angle) * rx[None, :] + np.sin(angle) * ry[:, None]))).astype(np.float32)


def frame_box(base: HeadBase, m: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) in the frame of the head drawn with pose `m`, clipped to it."""
    x0, y0, x1, y1 = base.box
    c = apply(m, np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float32))
    lo = np.maximum(np.floor(c.min(0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(c.max(0)).astype(int) + 2, base.size)
    if (hi <= lo).any():
        return None
    return int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])


def compose(
    background: np.ndarray, base: HeadBase, canon_rgb: np.ndarray, m: np.ndarray, light: tuple[float, float, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Warp the canonical head into the frame by the pose `m` (2, 3), light it and paste it.

    Works inside the head's bounding box only. `light` = (gain, strength, angle) or None.
    Returns the frame uint8 (S, S, 3) and the head alpha float32 (S, S) in the frame.
    """
    size = background.shape[0]
    frame = background.copy()
    alpha = np.zeros((size, size), np.float32)
    box = frame_box(base, m)
    if box is None:
        return frame, alpha
    x0, y0, x1, y1 = box
    m2 = m.copy()
    m2[:, 2] -= (x0, y0)
    face = cv2.warpAffine(canon_rgb, m2, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderValue=0)
    a = cv2.warpAffine(base.alpha, m2, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderValue=0)
    a = a.astype(np.float32) * (1 / 255)
    wf = a * light_map(size, *light, box) if light is not None else a
    out = background[y0:y1, x0:x1] * (1 - a)[..., None] + face * wf[..., None]
    np.minimum(out, 255, out=out)
    out += 0.5
    frame[y0:y1, x0:x1] = out.astype(np.uint8)
    alpha[y0:y1, x0:x1] = a
    return frame, alpha


def make_background(rng: np.random.Generator, size: int, shoulder_x: float, shoulder_y: float) -> np.ndarray:
    """A video's own background: gradient, blurred shapes, texture, and clothed shoulders."""
    c0, c1 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    t = np.linspace(0, 1, size, dtype=np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    ramp = np.clip(0.5 + 0.5 * (np.cos(ang) * (t[None, :] - 0.5) + np.sin(ang) * (t[:, None] - 0.5)) * 2, 0, 1)
    img = c0[None, None] * (1 - ramp[..., None]) + c1[None, None] * ramp[..., None]
    img = img.astype(np.float32)
    shapes = np.zeros((size, size, 3), np.float32)
    for _ in range(rng.integers(3, 8)):
        col = tuple(float(v) for v in rng.uniform(0, 255, 3))
        p = rng.uniform(0, size, 2)
        if rng.uniform() < 0.5:
            q = p + rng.uniform(20, 90, 2)
            cv2.rectangle(shapes, (int(p[0]), int(p[1])), (int(q[0]), int(q[1])), col, -1)
        else:
            cv2.circle(shapes, (int(p[0]), int(p[1])), int(rng.uniform(10, 45)), col, -1)
    mask = (shapes.sum(-1, keepdims=True) > 0).astype(np.float32) * rng.uniform(0.3, 0.8)
    img = img * (1 - mask) + shapes * mask
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 3.0))
    img *= 1 + 0.06 * _smooth_noise(rng, size, 24)[..., None]
    # shoulders in the clothing colour of this video
    cloth = tuple(float(v) for v in rng.uniform(10, 245, 3))
    w = size * rng.uniform(0.3, 0.42)
    cv2.ellipse(img, (int(shoulder_x), int(shoulder_y + 0.2 * size)), (int(w), int(0.22 * size)), 0, 180, 360, cloth, -1, cv2.LINE_AA)
    return np.clip(img, 0, 255).astype(np.uint8)
