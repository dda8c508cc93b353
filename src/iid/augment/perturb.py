"""Test-time perturbations of the robustness table (iil-main Table 4), batched on the batch's device.

The stage runs after the eval transform, on `image` float (B, 3, 224, 224) in [0, 1] before
normalisation (iid.augment.stages). Six perturbations are DeeperForensics-1.0's, at its five levels
(EndlessSora/DeeperForensics-1.0, perturbation/add_distortion_to_video.py `get_distortion_parameter`
and perturbation/distortions.py), the protocol LipForensics and the paper's Table 4 follow:

    saturation  CS   [0.4, 0.3, 0.2, 0.1, 0.0]        chroma (Cb, Cr) scaled by the value: 0 = grey
    contrast    CC   [0.85, 0.725, 0.6, 0.475, 0.35]  pixel values multiplied by the value
    occlusion   BW   [16, 32, 48, 64, 80]             8x8 blocks of grey 128 per 256 px of the shorter side
    noise       GNC  [0.001, 0.002, 0.005, 0.01, 0.05] variance of white Gaussian noise on YCbCr
    blur        GB   [7, 9, 13, 17, 21]               Gaussian kernel side, sigma = side / 6
    pixelation  JPEG [2, 3, 4, 5, 6]                  bilinear down by the factor, then back up
    compression VC   [30, 32, 35, 38, 40]             H.264 CRF (libx264, ffmpeg's default preset medium)

Level 0 is the identity (the batch is returned untouched); level k uses the k-th value.

Where this differs from DeeperForensics (which perturbs whole video frames and writes them to a video):
- the crops are perturbed, not the frames; block-wise keeps its 8 px blocks and its density (blocks per
  256 px of the shorter side, unfloored: 224 px gives 14..70 blocks, where DeeperForensics' integer
  `min(h, w) // 256` would give none);
- the noise is DeeperForensics' exactly in distribution: its studio-swing YCbCr round trip amounts to
  Gaussian noise of std sqrt(v) * 255/219 on Y and sqrt(v) * 255/224 on Cb, Cr ([0, 1] units);
- no 8-bit rounding between steps (the crops are floats from a bilinear warp already);
- compression: each 224 crop is encoded alone as one H.264 frame (an IDR frame) at the level's CRF
  and decoded back: H.264's spatial coding loss at that CRF (4:2:0 chroma, block transform,
  quantisation, deblocking). The motion-compensated P/B frames of a re-encoded video are not
  modelled: a test video's crops are frames at equal intervals, not a video, and encoding the rows
  of one batch together would tie the result to the batch size. For the full-video protocol
  re-encode the data set's videos (`ffmpeg -i in.mp4 -c:v libx264 -crf 35 out.mp4`) and prepare that
  copy as its own data set.

Random draws are keyed by (seed, video, frame) of each row, so a row gets the same perturbation
whatever batch it arrives in: block positions through a counter-based hash (the same on every
device; the blocks of a level are a subset of the next level's), noise from a generator per row
seeded by the row's key (one noise field per row, scaled by the level).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from iid.errors import UserError
from iid.settings import bounds, settings

LEVELS: dict[str, tuple[float, ...]] = {
    "saturation": (0.4, 0.3, 0.2, 0.1, 0.0),
    "contrast": (0.85, 0.725, 0.6, 0.475, 0.35),
    "occlusion": (16, 32, 48, 64, 80),
    "noise": (0.001, 0.002, 0.005, 0.01, 0.05),
    "blur": (7, 9, 13, 17, 21),
    "pixelation": (2, 3, 4, 5, 6),
    "compression": (30, 32, 35, 38, 40),
}
NAMES = tuple(LEVELS)
BLOCK = 8  # DeeperForensics' block side (px)
GREY = 128 / 255  # and its value
# BT.601 luma, OpenCV's YCrCb (what DeeperForensics converts with)
_LUMA = (0.299, 0.587, 0.114)
_CB, _CR = 0.564, 0.713  # Cb = (B - Y) * 0.564, Cr = (R - Y) * 0.713 (offsets cancel)


@dataclass(frozen=True)
class PerturbSettings:
    """The `perturb` group: which perturbation and its severity (0 = none)."""

    name: str = field(default="none", metadata=bounds(choices=("none", *NAMES)))
    level: int = field(default=0, metadata=bounds(0, 5))


def perturb_settings(node: Any) -> PerturbSettings:
    return settings(PerturbSettings, "perturb", node)


# -- counter-based random numbers ---------------------------------------------------------------------
_M32 = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """(x * c) mod 2^32 for int64 x in [0, 2^32), split in 16-bit halves so nothing overflows int64."""
    lo, hi = x & 0xFFFF, x >> 16
    return (lo * c + (((hi * c) & 0xFFFF) << 16)) & _M32


def _mix32(x: Tensor) -> Tensor:
    """A 32-bit integer hash (the 'lowbias32' constants of Wellons' hash-prospector)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def row_keys(seed: int, video: Tensor, frame: Tensor) -> Tensor:
    """(B,) int64 32-bit keys of (seed, video, frame): equal keys, equal draws."""
    s = torch.full_like(video, int(seed) & _M32)
    return _mix32(_mix32(_mix32(s) ^ (video & _M32)) ^ (frame & _M32))


def uniform(keys: Tensor, n: int, stream: int) -> Tensor:
    """(B, n) float32 uniforms in (0, 1): element i of row b depends only on (keys[b], stream, i)."""
    idx = torch.arange(n, device=keys.device, dtype=torch.int64)
    counter = _mix32((idx + (int(stream) << 28)) & _M32)  # (n,)
    u = _mix32(keys[:, None] ^ counter[None, :])  # (B, n)
    return ((u >> 8).to(torch.float32) + 0.5) / float(1 << 24)


def normal(keys: Tensor, shape: tuple[int, ...], stream: int) -> Tensor:
    """(B, *shape) standard normals, row b from a generator seeded by (keys[b], stream): per-pixel
    hashing would cost ~100x more on a CPU; the draws are then per device type (CPU and CUDA differ)."""
    out = torch.empty((keys.shape[0], *shape), device=keys.device)
    for b, k in enumerate(_mix32(keys ^ int(stream)).tolist()):
        g = torch.Generator(device=keys.device)
        g.manual_seed(int(k))
        out[b].normal_(generator=g)
    return out


# -- the perturbations: (B, 3, H, W) in [0, 1] -> same --------------------------------------------------
def saturation(x: Tensor, value: float) -> Tensor:
    """Cb and Cr scaled by `value` about neutral, Y kept: YCbCr -> RGB is linear, so this is
    Y + value * (RGB - Y), a blend towards grey that stays in range. One in-place luma and one lerp:
    1.7x faster than torchvision's adjust_saturation (whose grey weighs R 0.2989, not BT.601's 0.299)
    at one thread, 1.4x at two (benchmarks/bench_kornia.py, docs/architecture.md)."""
    y = x[:, 0:1] * _LUMA[0]
    y.add_(x[:, 1:2], alpha=_LUMA[1]).add_(x[:, 2:3], alpha=_LUMA[2])
    return torch.lerp(y.expand_as(x), x, value)


def contrast(x: Tensor, value: float) -> Tensor:
    return x * value


def occlusion(x: Tensor, value: float, keys: Tensor) -> Tensor:
    """round(value * min(H, W) / 256) grey 8x8 blocks per row at positions drawn from the row's key
    (top-left corner uniform in [0, side - 1 - 8], as DeeperForensics' randint)."""
    b, _, h, w = x.shape
    n = max(1, round(value * min(h, w) / 256))
    u = uniform(keys, 2 * n, stream=1).view(b, n, 2)
    x0 = (u[..., 0] * (w - BLOCK)).floor()  # (B, n), in [0, w - 1 - BLOCK]
    y0 = (u[..., 1] * (h - BLOCK)).floor()
    xs = torch.arange(w, device=x.device, dtype=torch.float32)
    ys = torch.arange(h, device=x.device, dtype=torch.float32)
    in_x = ((xs >= x0[..., None]) & (xs < x0[..., None] + BLOCK)).float()  # (B, n, W)
    in_y = ((ys >= y0[..., None]) & (ys < y0[..., None] + BLOCK)).float()  # (B, n, H)
    covered = torch.bmm(in_y.transpose(1, 2), in_x) > 0  # (B, H, W): inside any block
    return torch.where(covered[:, None], torch.full_like(x, GREY), x)


def noise(x: Tensor, variance: float, keys: Tensor) -> Tensor:
    """White Gaussian noise on Y, Cb, Cr with DeeperForensics' scales, back to RGB, clipped."""
    b, _, h, w = x.shape
    z = normal(keys, (3, h, w), stream=2)
    sd = math.sqrt(variance)
    dy = z[:, 0:1] * sd * 255 / 219
    dcb = z[:, 1:2] * sd * 255 / 224
    dcr = z[:, 2:3] * sd * 255 / 224
    # the inverse of OpenCV's YCrCb: R = Y + Cr / 0.713, B = Y + Cb / 0.564, G from the luma weights
    dr = dy + dcr / _CR
    db = dy + dcb / _CB
    dg = dy - (_LUMA[0] * dcr / _CR + _LUMA[2] * dcb / _CB) / _LUMA[1]
    return (x + torch.cat([dr, dg, db], 1)).clamp(0, 1)


def gaussian_kernel(side: int) -> Tensor:
    """cv2.getGaussianKernel(side, side / 6) (float64 weights, normalised)."""
    sigma = side / 6
    i = torch.arange(side, dtype=torch.float64) - (side - 1) / 2
    k = torch.exp(-(i**2) / (2 * sigma**2))
    return k / k.sum()


def blur(x: Tensor, side: int) -> Tensor:
    """Separable Gaussian blur; borders reflected without repeating the edge (OpenCV's default).
    Two depthwise convolutions: as fast as kornia's gaussian_blur2d at one thread (1.00-1.06x) and
    1.13x faster at two, where this stage runs (benchmarks/bench_kornia.py, docs/architecture.md)."""
    k = gaussian_kernel(int(side)).to(device=x.device, dtype=x.dtype)
    p = int(side) // 2
    c = x.shape[1]
    y = F.pad(x, (p, p, p, p), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def pixelation(x: Tensor, factor: int) -> Tensor:
    """cv2.resize down to (W // f, H // f) and back with INTER_LINEAR (half-pixel centres, no antialias)."""
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(h // int(factor), w // int(factor)), mode="bilinear", align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def h264_roundtrip(rgb: np.ndarray, crf: int, preset: str = "medium") -> np.ndarray:
    """One (H, W, 3) uint8 RGB image (H, W even) encoded as a one-frame H.264 stream at `crf`, decoded."""
    import av

    h, w = rgb.shape[:2]
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base = Fraction(1, 25)
    enc.options = {"crf": str(int(crf)), "preset": preset, "threads": "1"}  # one thread: bit-exact
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
    packets = [*enc.encode(frame), *enc.encode(None)]
    dec = av.CodecContext.create("h264", "r")
    out = [f for p in [*packets, None] for f in dec.decode(p)]
    if not out:
        raise RuntimeError("H.264 round trip decoded no frame")
    return out[0].to_ndarray(format="rgb24")


def compression(x: Tensor, crf: int, threads: int | None = None) -> Tensor:
    """Each row through h264_roundtrip at `crf` (on the CPU, rows in parallel threads)."""
    b, _, h, w = x.shape
    if h % 2 or w % 2:
        raise UserError(f"perturb=compression needs even crop sides (4:2:0 chroma), got {h}x{w}")
    imgs = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    with ThreadPoolExecutor(max_workers=threads or min(b, torch.get_num_threads(), 8) or 1) as pool:
        out = list(pool.map(lambda im: h264_roundtrip(im, crf), imgs))
    y = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
    return y.to(device=x.device, dtype=x.dtype) / 255


def apply(x: Tensor, name: str, level: int, keys: Tensor | None = None) -> Tensor:
    """Perturb a batch x (B, 3, H, W) in [0, 1]; `keys` (B,) from `row_keys` (random ones need them)."""
    if name not in LEVELS:
        raise UserError(f"unknown perturbation {name!r}: choose one of {', '.join(NAMES)}")
    if level == 0:
        return x
    if not 1 <= level <= 5:
        raise UserError(f"perturb.level={level}: must be 0..5")
    v = LEVELS[name][level - 1]
    if keys is None:
        keys = row_keys(0, torch.zeros(x.shape[0], dtype=torch.int64, device=x.device),
                        torch.arange(x.shape[0], device=x.device))  # fmt: skip
    if name == "saturation":
        return saturation(x, v)
    if name == "contrast":
        return contrast(x, v)
    if name == "occlusion":
        return occlusion(x, v, keys)
    if name == "noise":
        return noise(x, v, keys)
    if name == "blur":
        return blur(x, int(v))
    if name == "pixelation":
        return pixelation(x, int(v))
    return compression(x, int(v))


class Perturb(nn.Module):
    """The eval stage: batch dict -> batch dict with `image` perturbed (see the module docstring).

    Rows are keyed by the batch's `video` and `frame` (docs/interfaces.md); a batch without them
    is keyed by its row order."""

    def __init__(self, name: str, level: int, seed: int = 0, chunk: int = 16) -> None:
        super().__init__()
        self.name, self.level, self.seed, self.chunk = name, int(level), int(seed), int(chunk)

    def reseed(self, seed: int) -> None:
        self.seed = int(seed)

    def extra_repr(self) -> str:
        return f"name={self.name}, level={self.level}, seed={self.seed}"

    @torch.no_grad()
    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        if self.level == 0:
            return batch
        x = batch["image"]
        b, dev = x.shape[0], x.device
        video = batch.get("video")
        frame = batch.get("frame")
        video = torch.zeros(b, dtype=torch.int64, device=dev) if video is None else video.to(dev, torch.int64)
        frame = torch.arange(b, device=dev) if frame is None else frame.to(dev, torch.int64)
        keys = row_keys(self.seed, video, frame)
        # chunks bound the memory of the per-pixel hashes (a few (chunk, 3*H*W) int64 tensors)
        parts = [apply(x[i : i + self.chunk], self.name, self.level, keys[i : i + self.chunk])
                 for i in range(0, b, self.chunk)]  # fmt: skip
        out = dict(batch)
        out["image"] = torch.cat(parts) if parts else x
        return out


def build(node: Any, seed: int = 0) -> Perturb | None:
    """The stage of the `perturb` group (None for name none or level 0)."""
    s = perturb_settings(node)
    if s.name == "none" or s.level == 0:
        return None
    return Perturb(s.name, s.level, seed)
