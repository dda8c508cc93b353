"""Per-sample NumPy/OpenCV Self-Blended Images: the steps of iid.augment.sbi, one frame at a time, as
SBI's own data loader runs them (benchmark-only code: the speed baseline of benchmarks/bench_sbi.py).

The same settings (iid.augment.sbi.SBIConfig) and the same steps, written the way a per-sample loader
writes them: OpenCV's resize, filter2D, warpAffine, remap and GaussianBlur, NumPy for the rest, the
blend mask computed on the mask resized to (h, w) and resized back as SBI's get_blend_mask does (the
batched version scales its blurs instead).
"""

from __future__ import annotations

import cv2
import numpy as np

from iid.augment.config import SBIConfig


def _odd(rng: np.random.Generator, lohi) -> int:
    lo, hi = lohi
    return int(lo + 2 * rng.integers(0, (hi - lo) // 2 + 1))


def _blur(x: np.ndarray, ksize: int, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(x, (ksize, ksize), sigma, borderType=cv2.BORDER_CONSTANT)


def self_blend(image: np.ndarray, face_mask: np.ndarray, rng: np.random.Generator, cfg: SBIConfig = SBIConfig()):
    """image (S, S, 3) uint8, face_mask (S, S) uint8 -> (pseudo-fake uint8, blend weight (S, S) float32,
    box x0y0x1y1 or None)."""
    s = image.shape[0]
    q = s / 256
    real = image.astype(np.float32)
    # 1. colour and frequency jitter of a copy
    j = real.copy()
    if rng.random() < cfg.p_rgb_shift:
        j += rng.uniform(-cfg.rgb_shift, cfg.rgb_shift, 3).astype(np.float32)
        np.clip(j, 0, 255, out=j)
    alpha = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
    beta = rng.uniform(-cfg.brightness, cfg.brightness) * 255
    j = np.clip(j * alpha + beta, 0, 255).astype(np.float32)
    if rng.random() < cfg.p_downscale:
        f = int(cfg.downscale[rng.integers(len(cfg.downscale))])
        small = cv2.resize(j, (s // f, s // f), interpolation=cv2.INTER_NEAREST)
        j = cv2.resize(small, (s, s), interpolation=cv2.INTER_LINEAR)
    else:
        a = rng.uniform(*cfg.sharpen_alpha)
        light = rng.uniform(*cfg.sharpen_lightness)
        kernel = np.full((3, 3), -a, np.float32)
        kernel[1, 1] = 1 + a * (7 + light)  # (1 - a) I + a [[-1, -1, -1], [-1, 8 + L, -1], [-1, -1, -1]]
        j = np.clip(cv2.filter2D(j, -1, kernel, borderType=cv2.BORDER_REFLECT_101), 0, 255)
    if rng.random() < cfg.p_target_jitter:
        source, target = real, j
    else:
        source, target = j, real
    # 2. scale and translation of the source and its mask, about the canvas centre
    sc = rng.uniform(*cfg.scale)
    tx = rng.uniform(-cfg.translate[0], cfg.translate[0]) * s
    ty = rng.uniform(-cfg.translate[1], cfg.translate[1]) * s
    c = (s - 1) / 2
    m_aff = np.float32([[sc, 0, (1 - sc) * c + tx], [0, sc, (1 - sc) * c + ty]])
    source = cv2.warpAffine(source, m_aff, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = cv2.warpAffine(face_mask.astype(np.float32), m_aff, (s, s), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)  # fmt: skip
    # 3. elastic deformation of the mask
    sigma = cfg.elastic_sigma * q
    ks = 2 * int(4 * sigma) + 1
    dx = _blur((rng.random((s, s)) * 2 - 1).astype(np.float32), ks, sigma) * (cfg.elastic_alpha * q)
    dy = _blur((rng.random((s, s)) * 2 - 1).astype(np.float32), ks, sigma) * (cfg.elastic_alpha * q)
    gx, gy = np.meshgrid(np.arange(s, dtype=np.float32), np.arange(s, dtype=np.float32))
    mask = cv2.remap(mask, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = (mask > 0.5).astype(np.float32)
    # 4. blend mask (SBI's get_blend_mask) at a random size, and back
    lo, hi = cfg.mask_size
    h, w = (int(round(rng.integers(lo, hi + 1) * q)) for _ in range(2))
    m = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    k1 = int(_odd(rng, cfg.kernel1) * q) | 1
    m = _blur(m, k1, 0)
    m = m / max(float(m.max()), 1e-12)
    eroded = np.where(m >= 1 - 1e-5, 1.0, 0.0).astype(np.float32)
    if not eroded.any():
        eroded = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    k2 = int(_odd(rng, cfg.kernel2) * q) | 1
    s2 = float(rng.integers(int(cfg.sigma2[0]), int(cfg.sigma2[1]) + 1)) * q
    m = _blur(eroded, k2, s2)
    m = m / max(float(m.max()), 1e-12)
    m = cv2.resize(m, (s, s), interpolation=cv2.INTER_LINEAR)
    m *= cfg.blend_ratios[rng.integers(len(cfg.blend_ratios))]
    # 5. blend, box
    fake = np.clip(np.round(target + m[..., None] * (source - target)), 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(m > 0)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else None
    return fake, m, box
