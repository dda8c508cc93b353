"""Batched SSIM / DSSIM maps (Wang et al. 2004) with an 11x11 Gaussian window, sigma 1.5.

The constants and the border handling (reflect-101) follow the reference's cv2.filter2D version,
so a map here equals the per-sample OpenCV map up to float rounding.
"""

from __future__ import annotations

import torch

from iid.augment.filters import gaussian_kernel1d, separable_filter


def ssim_map(
    x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 1.0
) -> torch.Tensor:
    """Per-pixel, per-channel SSIM of x, y (B, C, H, W) -> (B, C, H, W)."""
    if x.shape != y.shape:
        raise ValueError(f"ssim_map: shapes differ {tuple(x.shape)} vs {tuple(y.shape)}")
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    b, c, h, w = x.shape
    k = gaussian_kernel1d(window, sigma, x.device, x.dtype)
    # One filtering pass over the five moments stacked along the channel axis.
    stats = separable_filter(torch.cat([x, y, x * x, y * y, x * y], dim=1), k)
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.split(c, dim=1)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x, var_y, cov = e_xx - mu_xx, e_yy - mu_yy, e_xy - mu_xy
    num = (2 * mu_xy + c1) * (2 * cov + c2)
    den = (mu_xx + mu_yy + c1) * (var_x + var_y + c2)
    return num / den


def dssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural dissimilarity |1 - SSIM| / 2 of images in [0, 1], (B, C, H, W) -> (B, C, H, W)."""
    return ((1.0 - ssim_map(x, y, window, sigma)) / 2).abs()
