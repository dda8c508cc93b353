"""Device-side, batched data augmentation applied after MFS (paper 5.1).

Geometry is one affine map per sample from the canvas to the output crop (face scale, translation,
rotation, horizontal flip folded in), applied with one `grid_sample` to images and masks and
exactly to landmarks and box corners, so boxes follow every geometric change. Photometric
transforms (JPEG, colour, blur, noise) then act on the output crop.

Coordinates: points use the pixel-centre convention (pixel i has centre i, as cv2); boxes use
pixel edges (a box [x0, x1) covers pixels x0..x1-1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from iid.augment.config import DAConfig
from iid.augment.jpeg import jpeg_roundtrip

# iBUG 300-W 68-point index of each landmark's mirror image (left eye <-> right eye, ...).
FLIP_68 = (
    list(range(16, -1, -1))
    + list(range(26, 16, -1))
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65]
)


def _uniform(lo: float, hi: float, n: int, gen: torch.Generator, dev) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=dev)


def affine_matrices(
    scale: torch.Tensor,
    angle_deg: torch.Tensor,
    translate: torch.Tensor,
    flip: torch.Tensor,
    canvas_size: int,
    out_size: int,
    crop_size: int = 224,
) -> torch.Tensor:
    """(B, 2, 3) maps canvas px -> output px: p = c_o + k * s * R(angle) (q - c_c) + k * t, then flip.

    k = out_size / crop_size, so at s = 1, angle = 0, t = 0 the output is the centred crop_size
    square of the canvas resized to out_size; s > 1 zooms in on the face.
    """
    b = scale.shape[0]
    k = out_size / crop_size
    c_c = (canvas_size - 1) / 2
    c_o = (out_size - 1) / 2
    th = angle_deg * math.pi / 180
    cos, sin = torch.cos(th) * scale * k, torch.sin(th) * scale * k
    m = torch.zeros((b, 2, 3), device=scale.device, dtype=torch.float32)
    m[:, 0, 0], m[:, 0, 1] = cos, -sin
    m[:, 1, 0], m[:, 1, 1] = sin, cos
    m[:, 0, 2] = c_o + k * translate[:, 0] - (cos - sin) * c_c
    m[:, 1, 2] = c_o + k * translate[:, 1] - (sin + cos) * c_c
    # Mirror the output: x -> (out - 1) - x.
    sign = torch.where(flip, -1.0, 1.0).to(m.dtype)
    m[:, 0] = m[:, 0] * sign[:, None]
    m[:, 0, 2] = m[:, 0, 2] + flip.to(m.dtype) * (out_size - 1)
    return m


def sample_geometry(
    b: int, cfg: DAConfig | None, gen: torch.Generator, device, canvas_size: int, out_size: int,
    crop_size: int = 224, face_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (or, with cfg None/disabled, centred) canvas->output affines (B, 2, 3) and flip flags (B,)."""
    scale = torch.full((b,), float(face_scale), device=device)
    angle = torch.zeros(b, device=device)
    trans = torch.zeros((b, 2), device=device)
    flip = torch.zeros(b, dtype=torch.bool, device=device)
    if cfg is not None and cfg.enabled:
        u = torch.rand((6, b), generator=gen, device=device)
        jit = u[0] < cfg.p_affine
        s = (cfg.scale_mean + cfg.scale_std * torch.randn(b, generator=gen, device=device)).clamp(*cfg.scale_range)
        scale = torch.where(jit, scale * s, scale)
        angle = torch.where(jit, cfg.max_rotation * (2 * u[1] - 1) ** 3, angle)  # cubed: mostly small
        t = torch.stack([2 * u[2] - 1, 2 * u[3] - 1], 1) * cfg.max_translate
        trans = torch.where(jit[:, None], t, trans)
        flip = u[4] < cfg.p_flip
    return affine_matrices(scale, angle, trans, flip, canvas_size, out_size, crop_size), flip


def _invert(m: torch.Tensor) -> torch.Tensor:
    full = torch.cat([m, torch.tensor([0.0, 0.0, 1.0], device=m.device).expand(m.shape[0], 1, 3)], 1)
    return torch.linalg.inv(full)[:, :2]


_BASE_GRIDS: dict[tuple[int, str], torch.Tensor] = {}


def _base_grid(out_size: int, device) -> torch.Tensor:
    """(out*out, 3) rows [x, y, 1] of output pixel centres, cached per size and device."""
    key = (out_size, str(device))
    base = _BASE_GRIDS.get(key)
    if base is None:
        ar = torch.arange(out_size, device=device, dtype=torch.float32)
        yy, xx = torch.meshgrid(ar, ar, indexing="ij")
        base = _BASE_GRIDS[key] = torch.stack([xx, yy, torch.ones_like(xx)], -1).view(-1, 3)
    return base


def affine_grid(m: torch.Tensor, out_size: int, canvas_size: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """grid_sample grid (B, out, out, 2) of canvas->output affines m (B, 2, 3), align_corners=True;
    written into `out` when given (a reused workspace). One grid serves the image and its masks:
    1.2x faster than kornia's warp_affine once per tensor at one thread (1.1x for a lone image)
    (benchmarks/bench_kornia.py, docs/architecture.md)."""
    b = m.shape[0]
    inv = _invert(m)  # output px -> canvas px
    grid = torch.empty((b, out_size, out_size, 2), device=m.device) if out is None else out
    # twice the canvas px of every output pixel: one (out*out, 3) @ (3, 2) product per sample (the
    # doubling is exact); then /(S - 1) - 1, the normalisation that grid_sample inverts most closely
    torch.matmul(_base_grid(out_size, m.device), 2 * inv.transpose(1, 2), out=grid.view(b, out_size * out_size, 2))
    return grid.div_(canvas_size - 1).sub_(1)


def warp_images(
    x: torch.Tensor, m: torch.Tensor, out_size: int, mode: str = "bilinear", grid: torch.Tensor | None = None
) -> torch.Tensor:
    """Warp x (B, C, S, S) by canvas->output affines m (B, 2, 3) into (B, C, out, out); zeros outside.

    `grid` (from affine_grid) lets several tensors share one grid."""
    if grid is None:
        grid = affine_grid(m, out_size, x.shape[-1])
    return F.grid_sample(x.float(), grid, mode=mode, padding_mode="zeros", align_corners=True)


def warp_points(pts: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Points (B, K, 2) canvas px (centres) -> output px."""
    return pts @ m[:, :, :2].transpose(1, 2) + m[:, None, :, 2]


def flip_landmarks(pts: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Reorder 68-point landmarks (B, 68, 2) of mirrored samples so index i is still landmark i."""
    if pts.shape[1] != len(FLIP_68):
        return pts
    perm = torch.tensor(FLIP_68, device=pts.device)
    return torch.where(flip[:, None, None], pts[:, perm], pts)


def warp_boxes(boxes: torch.Tensor, m: torch.Tensor, out_size: int) -> torch.Tensor:
    """Boxes (B, 4) x0y0x1y1 canvas pixel edges -> axis-aligned bounding box of the warped box,
    clipped to the output, in output pixel edges (B, 4)."""
    x0, y0, x1, y1 = (boxes - 0.5).unbind(1)  # edges -> centre coordinates
    corners = torch.stack(
        [torch.stack([x0, y0], 1), torch.stack([x1, y0], 1), torch.stack([x0, y1], 1), torch.stack([x1, y1], 1)], 1
    )
    c = warp_points(corners, m) + 0.5
    lo = c.amin(1).clamp(0, out_size)
    hi = c.amax(1).clamp(0, out_size)
    return torch.cat([lo, hi], 1)


@dataclass
class PhotoDraws:
    """The per-sample random numbers of the photometric ops, drawn for a whole batch in one order."""

    u: torch.Tensor  # (4, B): apply JPEG / colour / blur / noise
    r: torch.Tensor  # (7, B): their parameters

    def rows(self, start: int, stop: int) -> PhotoDraws:
        return PhotoDraws(self.u[:, start:stop], self.r[:, start:stop])


def draw_photometric(b: int, gen: torch.Generator, device) -> PhotoDraws:
    u = torch.rand((4, b), generator=gen, device=device)
    r = torch.rand((7, b), generator=gen, device=device)
    return PhotoDraws(u, r)


def photo_shares(draws: PhotoDraws, cfg: DAConfig) -> dict[str, float]:
    """Share of the batch each photometric op is applied to."""
    probs = (cfg.p_jpeg, cfg.p_color, cfg.p_blur, cfg.p_noise)
    shares = [float((draws.u[k] < p).float().mean()) if draws.u.shape[1] else 0.0 for k, p in enumerate(probs)]
    return dict(zip(("da_jpeg", "da_color", "da_blur", "da_noise"), shares))


def _lerp(lohi: tuple[float, float], t: torch.Tensor) -> torch.Tensor:
    return lohi[0] + t * (lohi[1] - lohi[0])


def _colour(y: torch.Tensor, sat: torch.Tensor, bright: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """((gray + sat (y - gray)) * bright).clamp(0, 1) ** gamma of y (n, 3, H, W) in [0, 1], fused.

    Saturation and brightness are one 3x3 matrix per sample (a single matmul pass); the power is
    exp(gamma * log y) in place (x = 0 gives exp(-inf) = 0). 1.7x faster than torchvision's
    adjust_saturation/brightness/gamma at one thread, 1.5x at two (benchmarks/bench_kornia.py, docs/architecture.md)."""
    n, c, h, w = y.shape
    lum = torch.tensor([0.299, 0.587, 0.114], device=y.device, dtype=y.dtype)
    eye = torch.eye(3, device=y.device, dtype=y.dtype)
    mat = bright.view(n, 1, 1) * (sat.view(n, 1, 1) * eye + (1 - sat).view(n, 1, 1) * lum.view(1, 1, 3))
    out = torch.bmm(mat, y.reshape(n, c, h * w)).view(n, c, h, w)
    return out.clamp_(0, 1).log_().mul_(gamma.view(n, 1, 1, 1)).exp_()


def _blur(y: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Gaussian blur (size x size, per-sample sigma (n,)) of y (n, C, H, W), reflect-101 borders.

    Separable, as `size` shifted multiply-adds per axis with per-sample taps: a depthwise conv2d
    would be faster per call, but oneDNN compiles a kernel for every new subset size. 2.8x faster than
    kornia's gaussian_blur2d with per-sample sigma at one thread (benchmarks/bench_kornia.py, docs/architecture.md)."""
    n, c, h, w = y.shape
    x = torch.arange(size, device=y.device, dtype=y.dtype) - (size - 1) / 2
    k1 = torch.exp(-(x[None] ** 2) / (2 * sigma[:, None].to(y.dtype) ** 2))
    taps = (k1 / k1.sum(1, keepdim=True)).T.reshape(size, n, 1, 1, 1)  # (size, n, 1, 1, 1)
    r = size // 2
    p = F.pad(y, (r, r, r, r), mode="reflect")
    acc = p[..., :, 0:w] * taps[0]
    for i in range(1, size):  # taps, not a loop over data
        acc.addcmul_(p[..., :, i : i + w], taps[i])
    out = acc[..., 0:h, :] * taps[0]
    for i in range(1, size):
        out.addcmul_(acc[..., i : i + h, :], taps[i])
    return out


def apply_photometric(
    x: torch.Tensor, cfg: DAConfig, draws: PhotoDraws, gen: torch.Generator, per_row: bool | None = None
) -> dict[str, float]:
    """JPEG, colour (brightness, saturation, gamma), Gaussian blur, Gaussian noise on x (B, 3, H, W)
    in [0, 1], in place, in that order; each op runs on its own subset and keeps [0, 1]. `gen` draws
    the noise pixels. Returns each op's share of the batch.

    per_row (default: on CPU) runs a sample's ops back to back on its own view while it is in
    cache, instead of each op gathering its subset and scattering it back (25% less time on CPU);
    on a GPU one batched op per subset. Both give the same result."""
    b = x.shape[0]
    dev = x.device
    u, r = draws.u, draws.r
    sel = torch.stack([u[0] < cfg.p_jpeg, u[1] < cfg.p_color, u[2] < cfg.p_blur, u[3] < cfg.p_noise])
    quality = _lerp(cfg.jpeg_quality, r[0]).round()
    sat, bright, gamma = _lerp(cfg.saturation, r[1]), _lerp(cfg.brightness, r[2]), _lerp(cfg.gamma, r[3])
    sigma, std = _lerp(cfg.blur_sigma, r[4]), _lerp(cfg.noise_std, r[5])
    idx = [sel[k].nonzero()[:, 0] for k in range(4)]
    # the noise of every noised sample in one draw, whichever way it is then applied
    noise = torch.randn((idx[3].numel(),) + x.shape[1:], generator=gen, device=dev) if idx[3].numel() else None
    if noise is not None:
        noise.mul_(std[idx[3]].view(-1, 1, 1, 1))
    if (dev.type == "cpu") if per_row is None else per_row:
        flags = sel.tolist()
        slot = {i: j for j, i in enumerate(idx[3].tolist())}
        for i in sel.any(0).nonzero()[:, 0].tolist():
            xi = x[i : i + 1]
            if flags[0][i]:
                xi.copy_(jpeg_roundtrip(xi, quality[i : i + 1]))
            if flags[1][i]:
                xi.copy_(_colour(xi, sat[i : i + 1], bright[i : i + 1], gamma[i : i + 1]))
            if flags[2][i]:
                xi.copy_(_blur(xi, sigma[i : i + 1], cfg.blur_kernel))
            if flags[3][i]:
                xi.add_(noise[slot[i] : slot[i] + 1]).clamp_(0, 1)
    else:
        if idx[0].numel():
            x.index_copy_(0, idx[0], jpeg_roundtrip(x.index_select(0, idx[0]), quality[idx[0]]))
        if idx[1].numel():
            c = idx[1]
            x.index_copy_(0, c, _colour(x.index_select(0, c), sat[c], bright[c], gamma[c]))
        if idx[2].numel():
            x.index_copy_(0, idx[2], _blur(x.index_select(0, idx[2]), sigma[idx[2]], cfg.blur_kernel))
        if noise is not None:
            x.index_copy_(0, idx[3], x.index_select(0, idx[3]).add_(noise).clamp_(0, 1))
    names = ("da_jpeg", "da_color", "da_blur", "da_noise")
    return {name: i.numel() / max(b, 1) for name, i in zip(names, idx)}


def photometric(x: torch.Tensor, cfg: DAConfig, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """JPEG, colour, blur, noise on x (B, 3, H, W) in [0, 1], in place, with draws from `gen`."""
    stats = apply_photometric(x, cfg, draw_photometric(x.shape[0], gen, x.device), gen)
    return x, stats
