"""Blending of a foreground into a background inside a mask: alpha with a blurred mask, and Poisson.

Poisson blending (Perez et al. 2003, paper eq. 3) solves, inside the mask, for the image whose
Laplacian equals the foreground's, with the background as Dirichlet boundary. Writing the result as
foreground + h, h is discrete-harmonic inside the mask with h = background - foreground outside, a
smooth membrane: a coarse-to-fine (cascadic multigrid) red-black SOR solves it for the whole batch
at once, in a fixed number of sweeps. Pixels outside the mask are never changed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


def _sor(h: torch.Tensor, unknown: torch.Tensor, sweeps: int, omega: float) -> torch.Tensor:
    """Red-black SOR sweeps of Laplace's equation on the unknown pixels; the others are boundary.

    In place on a zero-padded copy (no allocation per sweep): unknown pixels never touch the
    padding because callers keep a one-pixel known ring around them.
    """
    if sweeps <= 0:
        return h
    n, c, hh, ww = h.shape
    pad = F.pad(h, (1, 1, 1, 1))
    mid = pad[..., 1:-1, 1:-1]  # view of h inside the padding
    yy = torch.arange(hh, device=h.device)[:, None]
    xx = torch.arange(ww, device=h.device)[None, :]
    red = ((yy + xx) % 2 == 0)[None, None]
    weights = [(unknown & red).to(h.dtype) * omega, (unknown & ~red).to(h.dtype) * omega]
    nb = torch.empty_like(h)
    for _ in range(sweeps):
        for w in weights:
            torch.add(pad[..., :-2, 1:-1], pad[..., 2:, 1:-1], out=nb)
            nb.add_(pad[..., 1:-1, :-2]).add_(pad[..., 1:-1, 2:]).mul_(0.25)
            mid.add_(nb.sub_(mid).mul_(w))
    return mid.clone()


def _solve_harmonic(
    boundary: torch.Tensor, unknown: torch.Tensor, fine_sweeps: int, coarse_sweeps: int, min_size: int = 12
) -> torch.Tensor:
    """Harmonic h (N, C, H, W) on `unknown` (N, 1, H, W) bool with h = boundary elsewhere."""
    hh, ww = boundary.shape[-2:]
    if min(hh, ww) <= min_size:
        known = (~unknown).to(boundary.dtype)
        mean = (boundary * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1)
        h0 = torch.where(unknown, mean, boundary)
        return _sor(h0, unknown, coarse_sweeps, 1.5)
    # Pad to even size (padding is boundary), restrict: a coarse pixel is unknown only if all its children are (boundary data stays where it is).
    ph, pw = hh % 2, ww % 2
    b = F.pad(boundary, (0, pw, 0, ph), mode="replicate")
    u = F.pad(unknown, (0, pw, 0, ph), value=False)
    known = (~u).to(b.dtype)
    u_c = F.avg_pool2d(u.to(b.dtype), 2) > 0.99
    b_c = F.avg_pool2d(b * known, 2) / F.avg_pool2d(known, 2).clamp_min(1e-6)
    # Coarser levels are 4x cheaper: give them a few more sweeps (cascadic multigrid).
    h_c = _solve_harmonic(b_c, u_c, fine_sweeps + 2, coarse_sweeps, min_size)
    up = F.interpolate(h_c, scale_factor=2, mode="bilinear", align_corners=False)[..., :hh, :ww]
    h0 = torch.where(unknown, up, boundary)
    return _sor(h0, unknown, fine_sweeps, 1.9)  # over-relaxed: few sweeps, low-frequency error


def poisson_blend(
    background: torch.Tensor,
    foreground: torch.Tensor,
    mask: torch.Tensor,
    fine_sweeps: int = 6,
    coarse_sweeps: int = 60,
) -> torch.Tensor:
    """Seamless clone of foreground (N, C, H, W) into background inside mask (N, 1, H, W) 0/1.

    Guidance field = foreground gradients (cv2 NORMAL_CLONE); pixels outside the mask and on the
    image border keep the background. The solve runs on the bounding box of all masks only.
    """
    unknown = mask > 0.5
    unknown[..., 0, :] = False
    unknown[..., -1, :] = False
    unknown[..., :, 0] = False
    unknown[..., :, -1] = False
    out = background.clone()
    rows = unknown.any(dim=(0, 1, 3)).nonzero()
    cols = unknown.any(dim=(0, 1, 2)).nonzero()
    if rows.numel() == 0:
        return out
    y0, y1 = int(rows[0]) - 1, int(rows[-1]) + 2
    x0, x1 = int(cols[0]) - 1, int(cols[-1]) + 2
    bg = background[..., y0:y1, x0:x1]
    fg = foreground[..., y0:y1, x0:x1]
    unk = unknown[..., y0:y1, x0:x1]
    h = _solve_harmonic(bg - fg, unk, fine_sweeps, coarse_sweeps)
    out[..., y0:y1, x0:x1] = torch.where(unk, fg + h, bg)
    return out
