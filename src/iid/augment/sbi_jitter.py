"""Step 1 of Self-Blended Images (iid.augment.sbi): the jittered copy of a frame (colour jitter, then
a frequency change: downscale and back up, or sharpen), evaluated only where it is read, at given
canvas coordinates, on the window of the canvas those coordinates need.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from iid.augment.config import SBIConfig
from iid.augment.sbi_ops import float_window, sample_at, suggest_layout


def rows_of(u: dict[str, Tensor], idx: Any) -> dict[str, Tensor]:
    """The per-sample draws of the rows idx."""
    return {name: v[idx] for name, v in u.items()}


def pre_window(coords: Tensor, size: int, align: int) -> tuple[int, int]:
    """Canvas range [lo, hi) that bilinear samples at `coords` (and a 3x3 filter before them) read, lo
    a multiple of `align` so a nearest downscale of the window picks the canvas' own pixels."""
    lo = max(int(coords.min().floor()) - 2, 0) // align * align
    hi = min(int(coords.max().ceil()) + 3 + align, size)
    return lo, max(hi, lo + 2)


def colour(x: Tensor, u: dict[str, Tensor], c: SBIConfig) -> Tensor:
    """Colour jitter of x (n, 3, h, w) float 0..255 in place (step 1): RGB shift, contrast, brightness."""
    n = x.shape[0]
    shift = (u["rgb"] * 2 - 1) * c.rgb_shift * (u["p_rgb"] < c.p_rgb_shift)[:, None]  # (n, 3)
    if bool(shift.any()):
        x.add_(shift.view(n, 3, 1, 1)).clamp_(0, 255)
    alpha = 1 + (u["contrast"] * 2 - 1) * c.contrast
    beta = (u["brightness"] * 2 - 1) * c.brightness * 255
    return x.mul_(alpha.view(n, 1, 1, 1)).add_(beta.view(n, 1, 1, 1)).clamp_(0, 255)


def sharpen(x: Tensor, u: dict[str, Tensor], c: SBIConfig) -> Tensor:
    """(1-a) I + a [[-1,-1,-1],[-1,8+L,-1],[-1,-1,-1]] = (1 + a(8+L)) I - a box3x3 (albumentations
    Sharpen), reflect padding, on x (n, 3, h, w); 3x3 sums by shifted adds."""
    lo, hi = c.sharpen_alpha
    a = (lo + (hi - lo) * u["sharp_a"]).view(-1, 1, 1, 1)
    lo, hi = c.sharpen_lightness
    light = (lo + (hi - lo) * u["sharp_l"]).view(-1, 1, 1, 1)
    p = F.pad(x, (1, 1, 1, 1), mode="reflect")
    rows = p[..., :-2] + p[..., 1:-1]
    rows += p[..., 2:]
    box = rows[:, :, :-2] + rows[:, :, 1:-1]
    box += rows[:, :, 2:]
    # c x - a box = (c - a) lerp(x, box, -a / (c - a)), c = 1 + a (8 + L): two passes instead of three
    c = 1 + a * (8 + light)
    return torch.lerp(x, box, -a / (c - a)).mul_(c - a).clamp_(0, 255)


def jittered_at(image: Tensor, u: dict[str, Tensor], y: Tensor, x: Tensor, c: SBIConfig) -> Tensor:
    """The jittered copy of image (n, 3, S, S) uint8 (colour, then downscale-and-up or sharpen),
    sampled bilinearly at canvas pixel coordinates y (n, H), x (n, W): (n, 3, H, W) float 0..255.
    Computed on the coordinates' pre-image window only; a downscaled copy is sampled directly at
    the coordinates mapped into it (its bilinear upscale, evaluated where it is read)."""
    n, _, s, _ = image.shape
    align = math.lcm(*c.downscale)
    (y0, y1), (x0, x1) = pre_window(y, s, align), pre_window(x, s, align)
    pre = float_window(image, (y0, y1), (x0, x1))
    colour(pre, u, c)
    out = torch.empty((n, 3, y.shape[1], x.shape[1]), device=image.device, memory_format=suggest_layout(pre))
    down = u["p_down"] < c.p_downscale
    pick = (u["factor"] * len(c.downscale)).long().clamp(max=len(c.downscale) - 1)
    factor = torch.tensor(c.downscale, device=image.device)[pick]
    for f in c.downscale:  # one group per factor, vectorised inside it
        idx = (down & (factor == f)).nonzero()[:, 0]
        if idx.numel():  # nearest downscale keeps canvas pixels f*i; upscaling maps v -> (v + 0.5) / f - 0.5
            small = pre[:, :, ::f, ::f][idx]
            out.index_copy_(0, idx, sample_at(small, (y[idx] - y0 + 0.5) / f - 0.5, (x[idx] - x0 + 0.5) / f - 0.5))
    idx = (~down).nonzero()[:, 0]
    if idx.numel():
        sharp = sharpen(pre[idx], {key: u[key][idx] for key in ("sharp_a", "sharp_l")}, c)
        out.index_copy_(0, idx, sample_at(sharp, y[idx] - y0, x[idx] - x0))
    return out


def real_at(image: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """image (n, 3, S, S) uint8 sampled bilinearly at y (n, H), x (n, W): (n, 3, H, W) float."""
    s = image.shape[-1]
    (y0, y1), (x0, x1) = pre_window(y, s, 1), pre_window(x, s, 1)
    pre = float_window(image, (y0, y1), (x0, x1))
    return sample_at(pre, y - y0, x - x0)
