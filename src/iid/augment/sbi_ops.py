"""Batched image operations of the SBI stage (iid.augment.sbi), each with per-sample parameters and no
loop over samples: Gaussian kernels as banded matrices, rectangle erosion, bilinear sampling at separable
coordinates, and the support box of a mask. (iid.augment.filters has the fixed-parameter kin that
MFS uses: one sigma or radius for the whole batch.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_taps(sigma: Tensor, radius: Tensor, reach: int) -> Tensor:
    """(k, 2 reach + 1) 1-D Gaussian kernels of `sigma`, zero beyond each sample's integer `radius`
    (<= reach), normalised to sum 1."""
    taps = torch.arange(-reach, reach + 1, device=sigma.device, dtype=torch.float32)
    g = torch.exp(-(taps**2) / (2 * sigma.float().view(-1, 1) ** 2)) * (taps.abs() <= radius.view(-1, 1))
    return g / g.sum(1, keepdim=True)


def toeplitz(taps: Tensor) -> Tensor:
    """(k, n, n) symmetric Toeplitz matrices T[i, j] = taps[n - 1 + i - j] from symmetric taps
    (k, 2n - 1): a strided view of the taps (row i' = n-1-i starts at offset i'), flipped once."""
    k, length = taps.shape
    n = (length + 1) // 2
    taps = taps.contiguous()
    return taps.as_strided((k, n, n), (length, 1, 1), taps.storage_offset()).flip(1)


def gaussian_bands(sigma: Tensor, radius: Tensor, n: int) -> Tensor:
    """(k, n, n) banded matrices K with (K x)[i] = sum_j g(i - j) x[j]: a Gaussian of `sigma` truncated
    at `radius` (per sample), normalised to sum 1, zero outside the signal. Applied as two batched
    products: 1.14x faster than kornia's gaussian_blur2d with per-sample sigma at one thread (benchmarks/bench_kornia.py, docs/architecture.md)."""
    return toeplitz(gaussian_taps(sigma, radius.float().floor(), n - 1))


def box_bands(radius: Tensor, n: int) -> Tensor:
    """(k, n, n) 0/1 banded matrices B[i, j] = |i - j| <= radius (per sample): B x is a moving sum."""
    taps = torch.arange(-n + 1, n, device=radius.device).abs()
    return toeplitz((taps <= radius.view(-1, 1)).float())


def separable_blur(x: Tensor, band: Tensor) -> Tensor:
    """x (k, H, W) blurred along both axes by one shared banded matrix (H = W = n, band (n, n))."""
    out = (x.reshape(-1, x.shape[-1]) @ band.T).view_as(x)
    return band @ out


def erode_rect(x: Tensor, radius_y: Tensor, radius_x: Tensor) -> Tensor:
    """Binary erosion of x (k, H, W) {0, 1} by a (2 ry + 1) x (2 rx + 1) rectangle per sample, outside
    counting as 0: a pixel stays 1 only if its whole rectangle is 1 (what "blur with a k x k Gaussian,
    keep the maximum" does). The rectangle's counts as two banded products: 7.5x faster than kornia's
    erosion (one structuring element per call) at one intra-op thread, as the SBI stage runs on CPU
    (benchmarks/bench_kornia.py, docs/architecture.md)."""
    _, h, w = x.shape
    count = torch.bmm(torch.bmm(box_bands(radius_y, h), x), box_bands(radius_x, w))
    full = ((2 * radius_y + 1) * (2 * radius_x + 1)).view(-1, 1, 1)
    return (count > full - 0.5).to(x.dtype)


def sample_at(image: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """Bilinear samples of image (k, C, h, w) at the separable pixel coordinates y (k, H), x (k, W)
    (pixel centres at integers, zero outside): (k, C, H, W)."""
    k, _, h, w = image.shape
    gy = ((y + 0.5) * (2 / h) - 1).view(k, -1, 1).expand(k, y.shape[1], x.shape[1])
    gx = ((x + 0.5) * (2 / w) - 1).view(k, 1, -1).expand(k, y.shape[1], x.shape[1])
    grid = torch.stack([gx, gy], -1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def support_box(m: Tensor) -> tuple[Tensor, Tensor]:
    """Bounding boxes (k, 4) x0y0x1y1 (pixel edges) of m > 0 (k, H, W) for m >= 0, and which are non-empty."""
    _, h, w = m.shape
    cols, rows = m.amax(1) > 0, m.amax(2) > 0  # (k, W), (k, H)
    ax, ay = torch.arange(w, device=m.device), torch.arange(h, device=m.device)
    x0 = torch.where(cols, ax, w).amin(1)
    x1 = torch.where(cols, ax + 1, 0).amax(1)
    y0 = torch.where(rows, ay, h).amin(1)
    y1 = torch.where(rows, ay + 1, 0).amax(1)
    return torch.stack([x0, y0, x1, y1], 1).float(), cols.any(1)


def suggest_layout(x: Tensor) -> torch.memory_format:
    """channels_last for a channels-last batch (the loader's), else contiguous."""
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def float_window(image: Tensor, ys: tuple[int, int], xs: tuple[int, int]) -> Tensor:
    """image[:, :, y0:y1, x0:x1] (uint8) as a new float32 tensor in the image's memory layout: a
    channels-last batch (the loader's) stays channels-last, so the copy does not transpose."""
    window = image[:, :, ys[0] : ys[1], xs[0] : xs[1]]
    return torch.empty(window.shape, device=image.device, memory_format=suggest_layout(image)).copy_(window)


def span(on: Tensor) -> tuple[int, int]:
    """First and one-past-last index where the 1-D bool tensor is True ((0, 0) if none)."""
    idx = on.nonzero()
    return (int(idx[0]), int(idx[-1]) + 1) if idx.numel() else (0, 0)


def field_on(field: Tensor, up: int, ys: tuple[int, int], xs: tuple[int, int]) -> Tensor:
    """The field's bilinear upscale by `up` (align_corners=False), only on the mask-grid rows ys and
    columns xs: the coarse window around them, upscaled, cut (the same values as the whole)."""
    if up == 1:
        return field[:, :, ys[0] : ys[1], xs[0] : xs[1]].clone()
    nc = field.shape[-1]
    cy, cx = (max(lo // up - 1, 0) for lo in (ys[0], xs[0]))
    sub = field[:, :, cy : min(-(-ys[1] // up) + 1, nc), cx : min(-(-xs[1] // up) + 1, nc)]
    sub = F.interpolate(sub, scale_factor=up, mode="bilinear", align_corners=False)
    return sub[:, :, ys[0] - cy * up : ys[1] - cy * up, xs[0] - cx * up : xs[1] - cx * up]


def landing(lo: int, hi: int, scale: Tensor, t: Tensor, s: int) -> tuple[float, float]:
    """Canvas px range where pixels [lo, hi) of one axis land under the source move A: x -> scale x + t
    in [-1, 1] units (over every row of the chunk)."""
    ends = torch.tensor([lo - 1.0, hi], device=scale.device)  # bilinear reach of the edges
    landed = (((ends + 0.5) * (2 / s) - 1)[None] * scale[:, None] + t[:, None] + 1) * (s / 2) - 0.5
    return float(landed.min()), float(landed.max())


def moved(p: Tensor, scale: Tensor, t: Tensor, s: int) -> Tensor:
    """Canvas pixel coordinates A^-1 p (n, len(p)) of canvas pixels p along one axis."""
    un = (p.float() + 0.5) * (2 / s) - 1
    return ((un[None] - t[:, None]) / scale[:, None] + 1) * (s / 2) - 0.5
