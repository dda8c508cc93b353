"""Blending of a foreground into a background inside a mask: alpha with a blurred mask, and Poisson.

Poisson blending (Perez et al. 2003, paper eq. 3) in cv2.seamlessClone's formulation, the
reference's blender: a gradient-domain solve on a rectangle, done directly by a batched DST-I
(torch.fft) for every sample and channel at once, no iterations. Pixels outside the mask are never
changed.
"""

from __future__ import annotations

import torch

from iid.augment.filters import erode, gaussian_blur


def soft_mask(mask: torch.Tensor, kernel: int = 5, sigma: float = 3.0) -> torch.Tensor:
    """Alpha (N, 1, H, W) from a 0/1 mask: eroded by kernel//2 then Gaussian-blurred (kernel, sigma).

    The reference blurs the raw mask (5x5, sigma 3); eroding first keeps every changed pixel inside
    the mask, so an artifact box drawn from the mask contains all of the artifact.
    """
    return gaussian_blur(erode(mask, kernel // 2), sigma, kernel, mode="replicate").clamp(0, 1) * mask


def alpha_blend(background: torch.Tensor, foreground: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """background * (1 - alpha) + foreground * alpha; alpha (N, 1, H, W) broadcast over channels."""
    return background + alpha * (foreground - background)


def _dst1(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Unnormalised DST-I along `dim` (X_k = sum_n x_n sin(pi k n / (N + 1)), k, n = 1..N), by one rfft
    of the odd extension [0, x, 0, -reversed x] of length 2(N + 1)."""
    x = x.movedim(dim, -1)
    z = torch.zeros_like(x[..., :1])
    ext = torch.cat([z, x, z, -x.flip(-1)], -1)
    y = -torch.fft.rfft(ext, dim=-1).imag[..., 1 : x.shape[-1] + 1] / 2
    return y.movedim(-1, dim)


def solve_poisson_dirichlet0(rhs: torch.Tensor) -> torch.Tensor:
    """u (..., H, W) with 5-point Laplacian(u) = rhs on the grid and u = 0 on the ring just outside it.

    Direct: the DST-I diagonalises that Laplacian (eigenvalues 2cos(pi k/(H+1)) + 2cos(pi l/(W+1)) - 4).
    """
    h, w = rhs.shape[-2:]
    dt = rhs.dtype
    ky = torch.arange(1, h + 1, device=rhs.device, dtype=dt)
    kx = torch.arange(1, w + 1, device=rhs.device, dtype=dt)
    lam = (2 * torch.cos(torch.pi * ky / (h + 1)) - 2)[:, None] + (2 * torch.cos(torch.pi * kx / (w + 1)) - 2)[None]
    coef = _dst1(_dst1(rhs, -1), -2) / lam
    # DST-I is its own inverse up to 2 / (N + 1) per axis.
    return _dst1(_dst1(coef, -1), -2) * (4 / ((h + 1) * (w + 1)))


def poisson_blend(
    background: torch.Tensor, foreground: torch.Tensor, mask: torch.Tensor, guidance_erode: int = 3
) -> torch.Tensor:
    """Seamless clone of foreground (N, C, H, W) into background inside mask (N, 1, H, W) 0/1.

    cv2.seamlessClone's formulation (NORMAL_CLONE), solved directly: on the rectangle R bounding all
    masks (plus a one-pixel ring, clipped to the image), find s with Laplacian(s) = div(v) and
    s = background on the border of R, where the guidance v is the foreground's gradient on edges
    touching the mask eroded by `guidance_erode` px (cv2 erodes by three 3x3 passes) and the
    background's elsewhere. Then out = mask * s + (1 - mask) * background: cv2's result inside the
    mask, and pixels outside the mask never change (cv2 lets the correction spill out to the box).
    """
    inside = mask > 0.5
    out = background.clone()
    rows = inside.any(dim=(0, 1, 3)).nonzero()
    cols = inside.any(dim=(0, 1, 2)).nonzero()
    if rows.numel() == 0:
        return out
    hh, ww = background.shape[-2:]
    y0, y1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, hh)
    x0, x1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, ww)
    if y1 - y0 < 3 or x1 - x0 < 3:
        return out
    bg = background[..., y0:y1, x0:x1]
    m = inside[..., y0:y1, x0:x1].to(bg.dtype)
    g = erode(m, guidance_erode)  # min filter; padding never shrinks a mask touching R's edge
    d = foreground[..., y0:y1, x0:x1] - bg  # s = bg + u: u carries the guided gradient of fg - bg
    gx = (d[..., :, 1:] - d[..., :, :-1]) * torch.maximum(g[..., :, 1:], g[..., :, :-1])  # (N, C, h, w-1)
    gy = (d[..., 1:, :] - d[..., :-1, :]) * torch.maximum(g[..., 1:, :], g[..., :-1, :])  # (N, C, h-1, w)
    div = (gx[..., 1:-1, 1:] - gx[..., 1:-1, :-1]) + (gy[..., 1:, 1:-1] - gy[..., :-1, 1:-1])
    u = solve_poisson_dirichlet0(div)  # (N, C, h-2, w-2) on the interior of R
    out[..., y0 + 1 : y1 - 1, x0 + 1 : x1 - 1] += m[..., 1:-1, 1:-1] * u
    return out
