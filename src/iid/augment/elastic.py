"""Elastic deformation of masks (Simard et al. 2003), batched, as the reference applies to the global mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from iid.augment.filters import gaussian_blur


def elastic_displacement(
    n: int, size: tuple[int, int], alpha: torch.Tensor, sigma_frac: float, generator: torch.Generator,
    work: int = 64,
) -> torch.Tensor:
    """Displacement field (n, 2, H, W) in pixels: alpha * Gaussian(sigma = sigma_frac * H) * U(-1, 1) noise.

    The smoothing (sigma ~ 20 px at H = 256) runs on a `work`-pixel grid and is upsampled: a Gaussian
    field that smooth is unchanged by the detour. Sampling white noise f times coarser multiplies
    the smoothed field's std by f, so it is divided back by f.
    """
    hh, ww = size
    device = alpha.device
    f = max(1.0, hh / work)
    lh, lw = max(8, round(hh / f)), max(8, round(ww / f))
    sigma = sigma_frac * hh / f
    noise = torch.rand((n, 2, lh, lw), generator=generator, device=device) * 2 - 1
    smooth = gaussian_blur(noise, sigma, size=min(2 * int(3 * sigma) + 1, 2 * min(lh, lw) - 1))
    disp = F.interpolate(smooth, size=(hh, ww), mode="bilinear", align_corners=False)
    return disp * (alpha.view(n, 1, 1, 1) / f)


def elastic_deform(
    mask: torch.Tensor, alpha: torch.Tensor, sigma_frac: float, generator: torch.Generator
) -> torch.Tensor:
    """Warp mask (n, C, H, W) by an elastic displacement with per-sample strength alpha (n,); zeros outside."""
    n, _, hh, ww = mask.shape
    if n == 0:
        return mask
    disp = elastic_displacement(n, (hh, ww), alpha, sigma_frac, generator)
    ys = torch.arange(hh, device=mask.device, dtype=mask.dtype)
    xs = torch.arange(ww, device=mask.device, dtype=mask.dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    sx = gx + disp[:, 0]
    sy = gy + disp[:, 1]
    grid = torch.stack([2 * sx / (ww - 1) - 1, 2 * sy / (hh - 1) - 1], dim=-1)  # pixel centres, align_corners
    return F.grid_sample(mask, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
