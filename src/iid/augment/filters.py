"""Small batched filters shared by the augmentation modules (separable Gaussian, box erosion)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_kernel1d(size: int, sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """(size,) normalised Gaussian taps, the same as cv2.getGaussianKernel(size, sigma) for sigma > 0."""
    x = torch.arange(size, device=device, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).to(dtype)


def kernel_size_for(sigma: float, truncate: float = 3.0) -> int:
    """Odd kernel size covering +-truncate*sigma."""
    return 2 * max(1, math.ceil(truncate * sigma)) + 1


def separable_filter(x: torch.Tensor, k: torch.Tensor, mode: str = "reflect") -> torch.Tensor:
    """Filter x (N, C, H, W) by the outer product of 1D kernel k (K,) with itself.

    `reflect` padding is OpenCV's default BORDER_REFLECT_101, so results match cv2.filter2D.
    K shifted multiply-adds per axis: for the small kernels used here several times faster on CPU
    than a one-channel conv2d, and equally fine on GPU.
    """
    n, c, h, w = x.shape
    r = k.numel() // 2
    y = F.pad(x.reshape(n * c, 1, h, w), (r, r, r, r), mode=mode)[:, 0]  # (N*C, H+2r, W+2r)
    taps = k.tolist()
    acc = y[..., :, 0:w] * taps[0]
    for i in range(1, len(taps)):  # K taps, not a loop over data
        acc.add_(y[..., :, i : i + w], alpha=taps[i])
    out = acc[..., 0:h, :] * taps[0]
    for i in range(1, len(taps)):
        out.add_(acc[..., i : i + h, :], alpha=taps[i])
    return out.reshape(n, c, h, w)


def gaussian_blur(x: torch.Tensor, sigma: float, size: int | None = None, mode: str = "reflect") -> torch.Tensor:
    """Gaussian blur of x (N, C, H, W) with one sigma for the whole batch."""
    size = size or kernel_size_for(sigma)
    return separable_filter(x, gaussian_kernel1d(size, sigma), mode)  # taps read on the host


def erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary/soft erosion of mask (N, 1, H, W) by a (2r+1) square (min filter)."""
    if radius <= 0:
        return mask
    k = 2 * radius + 1  # a square min filter is separable: a row pass then a column pass
    y = F.max_pool2d(-mask, (1, k), stride=1, padding=(0, radius))
    return -F.max_pool2d(y, (k, 1), stride=1, padding=(radius, 0))
