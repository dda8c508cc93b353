"""Batched JPEG compression round trip (YCbCr, 4:2:0, 8x8 DCT, IJG quality-scaled tables).

kornia's differentiable JPEG costs ~30 ms per 224 image on this CPU; augmentation needs no
gradient, so this hard-rounding codec does the same arithmetic as a baseline JPEG in a few matmuls.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_Q_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]  # fmt: skip
_Q_CHROMA = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
] + [99] * 32  # fmt: skip


def _dct_matrix(device, dtype) -> torch.Tensor:
    k = torch.arange(8, dtype=torch.float64)
    m = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m.to(device=device, dtype=dtype)  # (8, 8) orthonormal DCT-II


def _tables(quality: torch.Tensor, base: list[int]) -> torch.Tensor:
    """IJG scaling of a base table by quality (N,) in [1, 100] -> (N, 1, 1, 1, 64) (row-major 8x8)."""
    q = quality.clamp(1, 100)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q)
    t = torch.tensor(base, device=q.device, dtype=q.dtype).view(1, 64)
    t = ((t * scale.view(-1, 1) + 50) / 100).floor().clamp(1, 255)
    return t.view(-1, 1, 1, 1, 64)


def _code_plane(x: torch.Tensor, table: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
    """DCT-quantise-dequantise-IDCT of planes x (N, C, H, W) in 0..255 with H, W multiples of 8.

    d2 = kron(D, D) (64, 64): the 2D DCT of a row-major 8x8 block is one matmul, so all blocks of the
    batch go through two (blocks, 64) @ (64, 64) GEMMs instead of many tiny 8x8 products."""
    n, c, h, w = x.shape
    blocks = (x - 128).view(n, c, h // 8, 8, w // 8, 8).transpose(3, 4).reshape(n, c, h // 8, w // 8, 64)
    coef = blocks @ d2.T
    coef = torch.round(coef / table) * table
    rec = (coef @ d2).view(n, c, h // 8, w // 8, 8, 8) + 128
    return rec.transpose(3, 4).reshape(n, c, h, w)


def jpeg_roundtrip(image: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Compress and decompress image (N, 3, H, W) in [0, 1] at per-sample quality (N,); returns [0, 1]."""
    n, _, h, w = image.shape
    if n == 0:
        return image
    ph, pw = (-h) % 16, (-w) % 16
    x = F.pad(image, (0, pw, 0, ph), mode="replicate") * 255
    r, g, b = x.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    d = _dct_matrix(x.device, torch.float64)
    d = torch.kron(d, d).to(x.dtype)  # (64, 64)
    q = quality.to(x.dtype)
    y = _code_plane(y[:, None], _tables(q, _Q_LUMA), d)[:, 0]
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)  # 4:2:0
    chroma = _code_plane(chroma, _tables(q, _Q_CHROMA), d)
    cb, cr = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False).unbind(1)
    cb, cr = cb - 128, cr - 128
    out = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return (out.round().clamp(0, 255) / 255)[..., :h, :w]
