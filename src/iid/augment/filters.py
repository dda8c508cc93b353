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
    than a one-channel conv2d, and equally fine on GPU; 1.65x faster than kornia's gaussian_blur2d
    on the MFS soft mask (5x5) and 1.46x on the elastic field (31x31), at one thread (benchmarks/bench_kornia.py, docs/architecture.md).
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
    """Binary/soft erosion of mask (N, 1, H, W) by a (2r+1) square (min filter; the image border
    does not erode). Separable, each pass as pairwise minima of shifted views: doubling steps cover
    2r+1 taps in ceil(log2(2r+1)) minima (CPU max_pool2d is several times slower at these sizes;
    kornia.morphology.erosion 6.6x slower at one thread, 5x at two (benchmarks/bench_kornia.py, docs/architecture.md))."""
    if radius <= 0:
        return mask
    return _min_axis(_min_axis(mask, radius, -1), radius, -2)


def _min_axis(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    """min over the window [i - r, i + r] along dim (clipped at the ends)."""
    n = x.shape[dim]
    big = torch.finfo(x.dtype).max if x.is_floating_point() else torch.iinfo(x.dtype).max
    pad = [0, 0] * (-dim - 1) + [r, r]
    y = F.pad(x, pad, value=big)  # out-of-image taps never win the minimum
    # m[j] = min(y[j : j + span]) for span doubling up to 2r+1
    span, m = 1, y
    while span < 2 * r + 1:
        step = min(span, 2 * r + 1 - span)
        m = torch.minimum(m.narrow(dim, 0, m.shape[dim] - step), m.narrow(dim, step, m.shape[dim] - step))
        span += step
    return m.narrow(dim, 0, n)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> new float32 tensor in [0, 1]; float input as float (no copy when already float32).

    A cast copy then an in-place scale: on CPU twice as fast as `x * (1 / 255)`, whose mixed-dtype
    multiply takes a slow casting path."""
    if x.dtype != torch.uint8:
        return x.float()
    return torch.empty(x.shape, device=x.device).copy_(x).mul_(1 / 255)


def crop_rows(
    x: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, h: int, w: int, rows: torch.Tensor | None = None,
    per_row: bool | None = None,
) -> torch.Tensor:
    """Per-sample crops (n, C, h, w): x[rows[i], :, oy[i]:oy[i]+h, ox[i]:ox[i]+w] (rows default 0..n-1).

    per_row (default: on CPU) makes one strided copy per sample, several times faster there than
    advanced indexing; otherwise one gather kernel (advanced indexing), one launch on a GPU."""
    n = oy.shape[0]
    rows = torch.arange(n, device=oy.device) if rows is None else rows
    if (x.device.type == "cpu") if per_row is None else per_row:
        if n == 0:
            return x.new_empty((0, x.shape[1], h, w))
        return torch.stack([x[r, :, a : a + h, b : b + w] for r, a, b in zip(rows.tolist(), oy.tolist(), ox.tolist())])
    ys = (oy[:, None] + torch.arange(h, device=oy.device))[:, :, None]
    xs = (ox[:, None] + torch.arange(w, device=ox.device))[:, None, :]
    return x[rows[:, None, None], :, ys, xs].permute(0, 3, 1, 2)


def paste_rows(
    dst: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, values: torch.Tensor, rows: torch.Tensor | None = None,
    per_row: bool | None = None,
) -> None:
    """dst[rows[i], :, oy[i]:oy[i]+h, ox[i]:ox[i]+w] = values[i] in place (rows distinct); values
    (n, C, h, w). per_row as in `crop_rows`."""
    n, _, h, w = values.shape
    rows = torch.arange(n, device=oy.device) if rows is None else rows
    if (dst.device.type == "cpu") if per_row is None else per_row:
        for i, (r, a, b) in enumerate(zip(rows.tolist(), oy.tolist(), ox.tolist())):
            dst[r, :, a : a + h, b : b + w] = values[i]
        return
    ys = (oy[:, None] + torch.arange(h, device=oy.device))[:, :, None]
    xs = (ox[:, None] + torch.arange(w, device=ox.device))[:, None, :]
    dst[rows[:, None, None], :, ys, xs] = values.permute(0, 2, 3, 1).to(dst.dtype)
