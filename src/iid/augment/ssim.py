"""Batched SSIM / DSSIM maps (Wang et al. 2004) with an 11x11 Gaussian window, sigma 1.5.

The constants and the border handling (reflect-101) follow the reference's cv2.filter2D version,
so a map here equals the per-sample OpenCV map up to float rounding.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from iid.augment.filters import gaussian_kernel1d


def _band(n_in: int, k: torch.Tensor) -> torch.Tensor:
    """(n_in, n_in - K + 1) banded matrix T with (v @ T)[j] = sum_i k[i] v[j + i] (valid correlation)."""
    return _band_cached(n_in, tuple(k.tolist()), str(k.device), k.dtype)


@functools.lru_cache(maxsize=256)
def _band_cached(n_in: int, taps: tuple[float, ...], device: str, dtype: torch.dtype) -> torch.Tensor:
    k = torch.tensor(taps, device=device, dtype=dtype)
    n_out = n_in - k.numel() + 1
    t = torch.zeros((n_in, n_out), device=k.device, dtype=k.dtype)
    j = torch.arange(n_out, device=k.device)
    for i in range(k.numel()):  # K taps, not a loop over data
        t[j + i, j] = k[i]
    return t


def gaussian_valid(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of x (..., H, W) by k (K,) -> (..., H-K+1, W-K+1).

    Two matmuls with banded matrices (cached per size): on CPU and GPU alike far faster than a
    1-channel conv2d, and than strips of smaller bands, whose copies cost more than the flops saved.
    """
    return _band(x.shape[-2], k).T @ (x @ _band(x.shape[-1], k))


def ssim_map(
    x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 1.0,
    pad: bool = True,
) -> torch.Tensor:
    """Per-pixel, per-channel SSIM of x, y (B, C, H, W).

    pad=True: reflect-101 borders (cv2.filter2D default), output (B, C, H, W). pad=False: the inputs
    carry a window//2 margin of real context, output (B, C, H - window + 1, W - window + 1).
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim_map: shapes differ {tuple(x.shape)} vs {tuple(y.shape)}")
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    c = x.shape[1]
    k = gaussian_kernel1d(window, sigma, x.device, x.dtype)
    r = window // 2
    if pad:
        x = F.pad(x, (r, r, r, r), mode="reflect")
        y = F.pad(y, (r, r, r, r), mode="reflect")
    # One filtering pass over the five moments stacked along the channel axis (written in place:
    # no concatenated copy), then the formula in place on the filtered maps.
    moments = torch.empty((x.shape[0], 5 * c) + x.shape[2:], device=x.device, dtype=x.dtype)
    mx, my, mxx, myy, mxy = moments.split(c, dim=1)
    mx.copy_(x)
    my.copy_(y)
    torch.mul(x, x, out=mxx)
    torch.mul(y, y, out=myy)
    torch.mul(x, y, out=mxy)
    mu_x, mu_y, e_xx, e_yy, e_xy = gaussian_valid(moments, k).split(c, dim=1)
    mu_xy = mu_x * mu_y
    cov2 = e_xy.sub_(mu_xy).mul_(2).add_(c2)  # 2 cov + c2
    num = mu_xy.mul_(2).add_(c1).mul_(cov2)
    m2 = mu_x.square_().add_(mu_y.square_())  # mu_x^2 + mu_y^2
    den = e_xx.add_(e_yy).sub_(m2).add_(c2).mul_(m2.add_(c1))
    return num.div_(den)


def dssim_map(
    x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, pad: bool = True
) -> torch.Tensor:
    """Structural dissimilarity |1 - SSIM| / 2 of images in [0, 1] (B, C, H, W); `pad` as in ssim_map."""
    return ssim_map(x, y, window, sigma, pad=pad).sub_(1).mul_(-0.5).abs_()
