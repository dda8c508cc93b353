"""Batched SSIM / DSSIM maps (Wang et al. 2004) with an 11x11 Gaussian window, sigma 1.5: kornia's
`kornia.metrics.ssim`, 1.1-1.2x faster than the banded-matmul version this module held before at one
intra-op thread, which is how MFS runs it on CPU (one per chunk worker); at two threads on the loaded
2-core machine the banded version was 1.0-1.6x faster (benchmarks/bench_kornia.py keeps it,
docs/architecture.md).

The constants and the border handling (reflect-101, torch's `reflect`) are those of the reference's
cv2.filter2D version, so a map here equals the per-sample OpenCV map up to float rounding.
"""

from __future__ import annotations

import torch


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, data_range: float = 1.0, pad: bool = True) -> torch.Tensor:
    """Per-pixel, per-channel SSIM of x, y (B, C, H, W).

    pad=True: reflect-101 borders (cv2.filter2D default), output (B, C, H, W). pad=False: the inputs
    carry a window//2 margin of real context, output (B, C, H - window + 1, W - window + 1).
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim_map: shapes differ {tuple(x.shape)} vs {tuple(y.shape)}")
    from kornia.metrics import ssim  # kornia takes half a second to import: only where MFS runs

    # eps=0: no term added to the denominator, as the reference's formula
    return ssim(x, y, window, max_val=data_range, eps=0.0, padding="same" if pad else "valid")


def dssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, pad: bool = True) -> torch.Tensor:
    """Structural dissimilarity |1 - SSIM| / 2 of images in [0, 1] (B, C, H, W); `pad` as in ssim_map."""
    return ssim_map(x, y, window, pad=pad).sub_(1).mul_(-0.5).abs_()
