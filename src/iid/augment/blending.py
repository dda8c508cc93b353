"""Blending of a foreground into a background inside a mask: alpha with a blurred mask, and Poisson.

Poisson blending (Perez et al. 2003, paper eq. 3) in cv2.seamlessClone's formulation, the
reference's blender: a gradient-domain solve on a rectangle, done directly by a batched DST-I
(matmuls with the DST matrices) for every sample and channel at once, no iterations. Pixels
outside the mask are never changed.
"""

from __future__ import annotations

import functools

import torch

from iid.augment.filters import crop_rows, erode, gaussian_blur, paste_rows


def soft_mask(mask: torch.Tensor, kernel: int = 5, sigma: float = 3.0) -> torch.Tensor:
    """Alpha (N, 1, H, W) from a 0/1 mask: eroded by kernel//2 then Gaussian-blurred (kernel, sigma).

    The reference blurs the raw mask (5x5, sigma 3); eroding first keeps every changed pixel inside
    the mask, so an artifact box drawn from the mask contains all of the artifact.
    """
    return gaussian_blur(erode(mask, kernel // 2), sigma, kernel, mode="replicate").clamp(0, 1) * mask


def alpha_blend(background: torch.Tensor, foreground: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """background * (1 - alpha) + foreground * alpha; alpha (N, 1, H, W) broadcast over channels."""
    return background + alpha * (foreground - background)


def _dst1_matrix(n: int, device, dtype) -> torch.Tensor:
    """(n, n) symmetric DST-I matrix S[k, j] = sin(pi (k + 1)(j + 1) / (n + 1)); S @ S = (n + 1) / 2 * I."""
    return _dst1_cached(n, str(device), dtype)


@functools.lru_cache(maxsize=256)
def _dst1_cached(n: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    k = torch.arange(1, n + 1, device=device, dtype=torch.float64)
    return torch.sin(torch.pi * k[:, None] * k[None] / (n + 1)).to(dtype)


@functools.lru_cache(maxsize=256)
def _inverse_eigenvalues(h: int, w: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    """4 / ((H + 1)(W + 1)) / lambda of the 5-point Laplacian's DST-I modes (H, W)."""
    ky = torch.arange(1, h + 1, device=device, dtype=torch.float64)
    kx = torch.arange(1, w + 1, device=device, dtype=torch.float64)
    lam = (2 * torch.cos(torch.pi * ky / (h + 1)) - 2)[:, None] + (2 * torch.cos(torch.pi * kx / (w + 1)) - 2)[None]
    # DST-I is its own inverse up to 2 / (N + 1) per axis: fold both factors into the eigenvalues.
    return (4 / ((h + 1) * (w + 1)) / lam).to(dtype)


def solve_poisson_dirichlet0(rhs: torch.Tensor) -> torch.Tensor:
    """u (..., H, W) with 5-point Laplacian(u) = rhs on the grid and u = 0 on the ring just outside it.

    Direct: the DST-I diagonalises that Laplacian (eigenvalues 2cos(pi k/(H+1)) + 2cos(pi l/(W+1)) - 4).
    The transforms are matmuls with the DST matrices: at these sizes (< 256) faster than an FFT of the
    odd extension on CPU, and plain GEMMs on GPU.
    """
    h, w = rhs.shape[-2:]
    dt = rhs.dtype
    sh, sw = _dst1_matrix(h, rhs.device, dt), _dst1_matrix(w, rhs.device, dt)
    coef = sh @ (rhs @ sw) * _inverse_eigenvalues(h, w, str(rhs.device), dt)
    return sh @ (coef @ sw)


def _crop_origins(inside: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Per-sample top-left (n,), (n,) of a common (h, w) rectangle holding each mask's bounding box
    plus a one-pixel ring (clipped to the image). inside: (n, 1, H, W) bool."""
    n, _, hh, ww = inside.shape
    rows, cols = inside.any(3)[:, 0], inside.any(2)[:, 0]  # (n, H), (n, W)
    y0 = rows.to(torch.uint8).argmax(1)
    y1 = hh - rows.flip(1).to(torch.uint8).argmax(1)
    x0 = cols.to(torch.uint8).argmax(1)
    x1 = ww - cols.flip(1).to(torch.uint8).argmax(1)
    h = min(int((y1 - y0).max()) + 2, hh)
    w = min(int((x1 - x0).max()) + 2, ww)
    return (y0 - 1).clamp(0, hh - h), (x0 - 1).clamp(0, ww - w), h, w


def poisson_blend(
    background: torch.Tensor, foreground: torch.Tensor, mask: torch.Tensor, guidance_erode: int = 3
) -> torch.Tensor:
    """Seamless clone of foreground (N, C, H, W) into background inside mask (N, 1, H, W) 0/1.

    cv2.seamlessClone's formulation (NORMAL_CLONE), solved directly: on a rectangle R around each
    mask's bounding box (plus a one-pixel ring, clipped to the image; one size for the batch, so a
    sample's R is its own box when the masks have one size, as a group of partial-swap windows),
    find s with Laplacian(s) = div(v) and s = background on the border of R, where the guidance v is
    the foreground's gradient on edges touching the mask eroded by `guidance_erode` px (cv2 erodes
    by three 3x3 passes) and the background's elsewhere. Then out = mask * s + (1 - mask) * background:
    cv2's result inside the mask, and pixels outside the mask never change (cv2 lets the correction
    spill out to the box).
    """
    inside = mask > 0.5
    has = inside.flatten(1).any(1)
    out = background.clone()
    idx = has.nonzero()[:, 0]
    if idx.numel() == 0:
        return out
    oy, ox, h, w = _crop_origins(inside[idx])
    if h < 3 or w < 3:
        return out
    bg = crop_rows(background, oy, ox, h, w, idx)
    m = crop_rows(inside, oy, ox, h, w, idx).to(bg.dtype)
    paste_rows(out, oy, ox, poisson_blend_rect(bg, crop_rows(foreground, oy, ox, h, w, idx), m, guidance_erode), idx)
    return out


def poisson_blend_rect(
    background: torch.Tensor, foreground: torch.Tensor, mask: torch.Tensor, guidance_erode: int = 3
) -> torch.Tensor:
    """`poisson_blend` on crops (N, C, h, w) that are already each sample's rectangle R (its mask's
    bounding box plus the one-pixel ring): the solve, without cropping and pasting back."""
    h, w = background.shape[-2:]
    if h < 3 or w < 3:
        return background.clone()
    m = mask.to(background.dtype)
    g = erode(m, guidance_erode)  # min filter; padding never shrinks a mask touching R's edge
    d = foreground - background  # s = bg + u: u carries the guided gradient of fg - bg
    gx = (d[..., :, 1:] - d[..., :, :-1]).mul_(torch.maximum(g[..., :, 1:], g[..., :, :-1]))  # (n, C, h, w-1)
    gy = (d[..., 1:, :] - d[..., :-1, :]).mul_(torch.maximum(g[..., 1:, :], g[..., :-1, :]))  # (n, C, h-1, w)
    div = (gx[..., 1:-1, 1:] - gx[..., 1:-1, :-1]).add_(gy[..., 1:, 1:-1]).sub_(gy[..., :-1, 1:-1])
    out = background.clone()
    out[..., 1:-1, 1:-1].add_(solve_poisson_dirichlet0(div).mul_(m[..., 1:-1, 1:-1]))  # u = 0 on R's border
    return out
