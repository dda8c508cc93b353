"""JPEG compression round trip at a per-sample quality (YCbCr, 4:2:0, 8x8 DCT, IJG quality-scaled tables).

On CPU each image goes through libjpeg (torchvision.io): 1.3-1.7x faster than the batched codec below
at one thread and 3.4-4.5x at two (benchmarks/bench_kornia.py, docs/architecture.md), and it is the
codec itself. On a GPU the batched codec: the same arithmetic as a baseline JPEG in a few matmuls,
hard rounding (augmentation needs no gradient; kornia's differentiable JPEG is 4.8x slower than it on
CPU).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.io import decode_jpeg, encode_jpeg

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
    """IJG scaling of a base table by quality (N,) in [1, 100] -> (N, 64) (row-major 8x8)."""
    q = quality.clamp(1, 100)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q)
    t = torch.tensor(base, device=q.device, dtype=q.dtype).view(1, 64)
    return ((t * scale.view(-1, 1) + 50) / 100).floor().clamp(1, 255)


# RGB -> YCbCr (JFIF), and the chroma part of the way back.
_TO_Y = (0.299, 0.587, 0.114)
_TO_CB = (-0.168736, -0.331264, 0.5)
_TO_CR = (0.5, -0.418688, -0.081312)


def _code_plane(x: torch.Tensor, table: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
    """DCT-quantise-dequantise-IDCT of centred planes x (N, C, H, W) with H, W multiples of 8.

    d2 = kron(D, D) (64, 64): the 2D DCT of a row-major 8x8 block is one matmul. The per-sample
    quantisation table (N, 64) is folded into the two matrices (D2^T diag(1/t), diag(t) D2), so all
    blocks of a sample go through two (blocks, 64) @ (64, 64) GEMMs with one rounding between them."""
    n, c, h, w = x.shape
    blocks = x.view(n, c, h // 8, 8, w // 8, 8).transpose(3, 4).reshape(n, c * (h // 8) * (w // 8), 64)
    coef = torch.bmm(blocks, d2.T[None] / table[:, None, :]).round_()
    rec = torch.bmm(coef, table[:, :, None] * d2[None])
    return rec.view(n, c, h // 8, w // 8, 8, 8).transpose(3, 4).reshape(n, c, h, w)


def _mix(planes: list[torch.Tensor], coef: tuple[float, float, float], scale: float) -> torch.Tensor:
    """scale * sum_i coef[i] * planes[i], as one product and two fused adds (no small-K matmul)."""
    out = planes[0] * (coef[0] * scale)
    out.add_(planes[1], alpha=coef[1] * scale)
    return out.add_(planes[2], alpha=coef[2] * scale)


def _upsample2(x: torch.Tensor, dim: int) -> torch.Tensor:
    """x2 linear upsampling along dim, half-pixel centres with replicated edges: exactly
    F.interpolate(scale_factor=2, mode='bilinear', align_corners=False) per axis (outputs
    0.75 * x[i] + 0.25 * x[i -+ 1]), as two lerps into the interleaved result."""
    n = x.shape[dim]
    first, last = x.narrow(dim, 0, 1), x.narrow(dim, n - 1, 1)
    prev = torch.cat([first, x.narrow(dim, 0, n - 1)], dim)
    nxt = torch.cat([x.narrow(dim, 1, n - 1), last], dim)
    shape = list(x.shape)
    out = x.new_empty(shape[: dim % x.ndim + 1] + [2] + shape[dim % x.ndim + 1 :])
    d = dim % x.ndim
    torch.lerp(x, prev, 0.25, out=out.select(d + 1, 0))
    torch.lerp(x, nxt, 0.25, out=out.select(d + 1, 1))
    shape[d] *= 2
    return out.view(shape)


def jpeg_roundtrip(image: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Compress and decompress image (N, 3, H, W) in [0, 1] at per-sample quality (N,); returns [0, 1]
    (a new tensor, rounded to the 256 levels as a decoder's output). Batched tensor ops on every device:
    libjpeg (libjpeg_roundtrip) was 1.7x faster per batch on one CPU thread, but it encodes and decodes
    one image at a time in a Python loop, which the training hot path does not allow."""
    return batched_roundtrip(image, quality)


def libjpeg_roundtrip(image: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """jpeg_roundtrip through libjpeg, one image at a time (the input rounded to 8 bits first, as an
    encoder reads it): the reference the batched codec is tested and timed against."""
    out = torch.empty_like(image, memory_format=torch.contiguous_format)
    u8 = image.mul(255).round_().clamp_(0, 255).to(torch.uint8)
    for i, q in enumerate(quality.round().clamp(1, 100).int().tolist()):
        out[i] = decode_jpeg(encode_jpeg(u8[i].contiguous(), quality=q))
    return out.mul_(1 / 255)


def batched_roundtrip(image: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """jpeg_roundtrip as batched tensor ops on the image's device (two GEMMs per plane)."""
    n, _, h, w = image.shape
    if n == 0:
        return image
    ph, pw = (-h) % 16, (-w) % 16
    x = F.pad(image, (0, pw, 0, ph), mode="replicate") if ph or pw else image
    hh, ww = x.shape[-2:]
    dt = x.dtype
    rgb = x.unbind(1)
    y = _mix(rgb, _TO_Y, 255.0).sub_(128)[:, None]  # level-shifted luma (N, 1, H, W)
    # 4:2:0: chroma of the 2x2 means (the colour transform is linear, so pool RGB first, at a
    # quarter of the work), as pair sums on strided views (avg_pool2d is slower here)
    pairs = x.unflatten(3, (ww // 2, 2))
    pairs = (pairs[..., 0] + pairs[..., 1]).unflatten(2, (hh // 2, 2))
    pooled = torch.add(pairs[:, :, :, 0], pairs[:, :, :, 1]).unbind(1)  # sums of 4
    chroma = torch.stack([_mix(pooled, _TO_CB, 255 / 4), _mix(pooled, _TO_CR, 255 / 4)], 1)
    d = _dct_matrix(x.device, torch.float64)
    d = torch.kron(d, d).to(dt)  # (64, 64)
    q = quality.to(dt)
    y = _code_plane(y, _tables(q, _Q_LUMA), d)[:, 0].add_(128)
    chroma = _code_plane(chroma, _tables(q, _Q_CHROMA), d)
    cb, cr = _upsample2(_upsample2(chroma, -1), -2).unbind(1)
    out = torch.empty((n, 3, hh, ww), device=x.device, dtype=dt)
    torch.add(y, cr, alpha=1.402, out=out[:, 0])
    torch.add(y, cb, alpha=-0.344136, out=out[:, 1]).add_(cr, alpha=-0.714136)
    torch.add(y, cb, alpha=1.772, out=out[:, 2])
    out = out.round_().clamp_(0, 255).mul_(1 / 255)
    return out[..., :h, :w] if ph or pw else out
