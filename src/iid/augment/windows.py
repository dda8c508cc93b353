"""Window sums by integral image and their argmax over all positions, for a whole batch (paper eq. 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def window_sums(score: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Sum of score (B, H, W) over every h x w window -> (B, H-h+1, W-w+1), indexed by top-left (y, x).

    Float64 integral image: window sums of ~1e4 terms must still rank correctly.
    """
    b, hh, ww = score.shape
    if h > hh or w > ww:
        raise ValueError(f"window {h}x{w} larger than the score map {hh}x{ww}")
    s = score.to(torch.float64)
    ii = F.pad(s.cumsum(1).cumsum(2), (1, 0, 1, 0))  # (B, H+1, W+1), ii[y, x] = sum score[:y, :x]
    return ii[:, h:, w:] - ii[:, :-h, w:] - ii[:, h:, :-w] + ii[:, :-h, :-w]


def best_window(score: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-left (y, x) (B, 2) int64 of the h x w window with the largest sum of score (B, H, W), and that sum (B,).

    Ties go to the first position in row-major order (torch.argmax).
    """
    sums = window_sums(score, h, w)  # (B, ny, nx)
    flat = sums.flatten(1)
    best = flat.argmax(1)
    nx = sums.shape[2]
    yx = torch.stack([best // nx, best % nx], dim=1)
    return yx, flat.gather(1, best[:, None])[:, 0]
