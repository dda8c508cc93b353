"""The hand-written tensor ops of iid.augment against the library op that does the same (kornia, or
torchvision where it is the closer match), on the same inputs, at the shapes the training and
evaluation hot paths call them with.

    nice -n 0 .venv/bin/python benchmarks/bench_kornia.py [--reps 7] [--threads 1 2] [--device cpu cuda]

For each op and each thread count (torch.set_num_threads) it prints the median time of both over
--reps rounds (each round a few calls after a warm-up; the two sides interleaved, so a shared
machine's load hits both alike), their ratio, and the largest absolute difference of the outputs
(with the reason when it is not float rounding). On a GPU it times with CUDA synchronisation.
`--markdown` prints the table docs/architecture.md carries.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torchvision.io import decode_jpeg, encode_jpeg

from iid.augment import da, perturb, sbi_ops
from iid.augment.elastic import elastic_deform
from iid.augment.filters import erode, gaussian_blur, gaussian_kernel1d
from iid.augment.jpeg import batched_roundtrip


@dataclass
class Case:
    op: str  # what is compared, as docs/architecture.md names it
    library: str  # the library call
    make: Callable[[torch.device], tuple]  # device -> inputs
    ours: Callable[..., torch.Tensor]
    theirs: Callable[..., torch.Tensor]
    why: str = "float rounding"  # why the outputs may differ
    compare: bool = True  # False: the outputs are not comparable (reason in `why`)


def _images(n: int, s: int, dev, seed: int = 0) -> torch.Tensor:
    """Smooth images with detail, in [0, 1] (a face crop's statistics, roughly)."""
    g = torch.Generator().manual_seed(seed)
    base = F.interpolate(torch.rand(n, 3, s // 16, s // 16, generator=g), size=(s, s), mode="bicubic")
    detail = torch.rand(n, 3, s, s, generator=g)
    return (0.8 * base + 0.2 * detail).clamp(0, 1).to(dev)


def _mask(n: int, s: int, dev) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    hull = ((((xx - s / 2) / (0.27 * s)) ** 2 + ((yy - 0.53 * s) / (0.35 * s)) ** 2) < 1).float()
    return hull.expand(n, 1, s, s).contiguous().to(dev)


def _per_sample(n: int, lo: float, hi: float, dev, seed: int = 1) -> torch.Tensor:
    return (lo + (hi - lo) * torch.rand(n, generator=torch.Generator().manual_seed(seed))).to(dev)


def _warp_inputs(dev):
    g = torch.Generator().manual_seed(2)
    n = 8
    m = da.affine_matrices(1 + 0.1 * torch.randn(n, generator=g), 30 * (2 * torch.rand(n, generator=g) - 1) ** 3,
                           25 * (2 * torch.rand(n, 2, generator=g) - 1), torch.rand(n, generator=g) < 0.5, 256, 224)  # fmt: skip
    return _images(n, 256, dev), m.to(dev)


def _warp_pair_inputs(dev):
    x, m = _warp_inputs(dev)
    return x, _mask(len(x), 256, dev), m


def _warp_pair_ours(x, mask, m):
    """As the train transform warps a chunk (pipeline._warp_chunk): one grid for the image and the mask."""
    grid = da.affine_grid(m, 224, x.shape[-1])
    return torch.cat([F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=True) for t in (x, mask)], 1)


def _warp_pair_kornia(x, mask, m):
    return torch.cat([kornia.geometry.transform.warp_affine(t, m, (224, 224), align_corners=True) for t in (x, mask)], 1)


def _colour_ours(x, sat, bright, gamma):
    return torch.cat([da._colour(x[i : i + 1], sat[i : i + 1], bright[i : i + 1], gamma[i : i + 1]) for i in range(len(x))])


def _colour_tv(x, sat, bright, gamma):
    out = []
    for i in range(len(x)):  # torchvision takes one factor per call: one call per sample, as da runs on CPU
        y = TF.adjust_saturation(x[i], float(sat[i]))
        y = TF.adjust_brightness(y, float(bright[i]))
        out.append(TF.adjust_gamma(y, float(gamma[i])))
    return torch.stack(out)


def _blur_ours(x, sigma):
    return torch.cat([da._blur(x[i : i + 1], sigma[i : i + 1], 5) for i in range(len(x))])


def _blur_kornia(x, sigma):
    return torch.cat([kornia.filters.gaussian_blur2d(x[i : i + 1], 5, sigma[i : i + 1, None].expand(1, 2)) for i in range(len(x))])


def _jpeg_ours(x, q):
    return torch.cat([batched_roundtrip(x[i : i + 1], q[i : i + 1]) for i in range(len(x))])


def _jpeg_kornia(x, q):
    return torch.cat([kornia.enhance.jpeg_codec_differentiable(x[i : i + 1], q[i : i + 1]) for i in range(len(x))])


def _jpeg_tv(x, q):
    u8 = (x * 255).round().to(torch.uint8).cpu()
    out = [decode_jpeg(encode_jpeg(u8[i], quality=int(q[i]))) for i in range(len(x))]
    return torch.stack(out).to(x.device).float().div_(255)


def _elastic_inputs(dev):
    return _mask(8, 256, dev), _per_sample(8, 300.0, 500.0, dev)


def _elastic_ours(mask, alpha):
    return elastic_deform(mask, alpha, 0.08, torch.Generator(mask.device).manual_seed(0))


def _elastic_kornia(mask, alpha):
    # the same field definition at full resolution: alpha * Gaussian(sigma 0.08 H, +-3 sigma) * U(-1, 1)
    n, _, h, w = mask.shape
    noise = torch.rand((n, 2, h, w), generator=torch.Generator(mask.device).manual_seed(0), device=mask.device) * 2 - 1
    sigma = 0.08 * h
    size = 2 * int(3 * sigma) + 1
    # kornia's alpha is in normalised units ([-1, 1] over the image): px * 2 / (H - 1); one per call
    a = (alpha[0] * 2 / (h - 1)).expand(2)
    return kornia.geometry.transform.elastic_transform2d(mask, noise, (size, size), (sigma, sigma), a, align_corners=True)


def _sbi_erode_inputs(dev):
    g = torch.Generator().manual_seed(3)
    m = (_mask(8, 128, dev)[:, 0] > 0).float()
    return m, torch.randint(1, 6, (8,), generator=g).to(dev), torch.randint(1, 6, (8,), generator=g).to(dev)


def _sbi_erode_kornia(x, ry, rx):
    out = []
    for i in range(len(x)):  # one structuring element per call
        k = torch.ones(2 * int(ry[i]) + 1, 2 * int(rx[i]) + 1, device=x.device)
        out.append(kornia.morphology.erosion(x[i : i + 1, None], k, border_type="constant", border_value=0.0)[:, 0])
    return torch.cat(out)


def _sbi_blur_inputs(dev):
    m = _mask(8, 128, dev)[:, 0]
    return m, _per_sample(8, 2.5, 22.5, dev)


def _sbi_blur_ours(x, sigma):
    # per-sample sigma, truncated at a shared radius (so kornia can use one kernel size), zeros outside
    return torch.bmm(torch.bmm(sbi_ops.gaussian_bands(sigma, torch.full_like(sigma, 12), x.shape[-1]), x),
                     sbi_ops.gaussian_bands(sigma, torch.full_like(sigma, 12), x.shape[-1]).transpose(1, 2))  # fmt: skip


def _sbi_blur_kornia(x, sigma):
    return kornia.filters.gaussian_blur2d(x[:, None], 25, sigma[:, None].expand(-1, 2), border_type="constant")[:, 0]


# -- the hand-written versions that a library op replaced, kept here so the comparison can be rerun --
# iid.augment.ssim before kornia, verbatim
def _band(n_in: int, k: torch.Tensor) -> torch.Tensor:
    """(n_in, n_in - K + 1) banded matrix T with (v @ T)[j] = sum_i k[i] v[j + i] (valid correlation)."""
    return _band_cached(n_in, tuple(k.tolist()), str(k.device), k.dtype)


@functools.lru_cache(maxsize=256)
def _band_cached(n_in: int, taps: tuple[float, ...], device: str, dtype: torch.dtype) -> torch.Tensor:
    k = torch.tensor(taps, device=device, dtype=dtype)
    n_out = n_in - k.numel() + 1
    t = torch.zeros((n_in, n_out), device=k.device, dtype=k.dtype)
    j = torch.arange(n_out, device=k.device)
    for i in range(k.numel()):  # K taps, not a loop over data
        t[j + i, j] = k[i]
    return t


def _gaussian_valid(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of x (..., H, W) by k (K,) -> (..., H-K+1, W-K+1).

    Two matmuls with banded matrices (cached per size): on CPU and GPU alike far faster than a
    1-channel conv2d, and than strips of smaller bands, whose copies cost more than the flops saved.
    """
    return _band(x.shape[-2], k).T @ (x @ _band(x.shape[-1], k))


def banded_ssim_map(
    x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, data_range: float = 1.0,
    pad: bool = True,
) -> torch.Tensor:
    """Per-pixel, per-channel SSIM of x, y (B, C, H, W).

    pad=True: reflect-101 borders (cv2.filter2D default), output (B, C, H, W). pad=False: the inputs
    carry a window//2 margin of real context, output (B, C, H - window + 1, W - window + 1).
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim_map: shapes differ {tuple(x.shape)} vs {tuple(y.shape)}")
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    c = x.shape[1]
    k = gaussian_kernel1d(window, sigma, x.device, x.dtype)
    r = window // 2
    if pad:
        x = F.pad(x, (r, r, r, r), mode="reflect")
        y = F.pad(y, (r, r, r, r), mode="reflect")
    # One filtering pass over the five moments stacked along the channel axis (written in place:
    # no concatenated copy), then the formula in place on the filtered maps.
    moments = torch.empty((x.shape[0], 5 * c) + x.shape[2:], device=x.device, dtype=x.dtype)
    mx, my, mxx, myy, mxy = moments.split(c, dim=1)
    mx.copy_(x)
    my.copy_(y)
    torch.mul(x, x, out=mxx)
    torch.mul(y, y, out=myy)
    torch.mul(x, y, out=mxy)
    mu_x, mu_y, e_xx, e_yy, e_xy = _gaussian_valid(moments, k).split(c, dim=1)
    mu_xy = mu_x * mu_y
    cov2 = e_xy.sub_(mu_xy).mul_(2).add_(c2)  # 2 cov + c2
    num = mu_xy.mul_(2).add_(c1).mul_(cov2)
    m2 = mu_x.square_().add_(mu_y.square_())  # mu_x^2 + mu_y^2
    den = e_xx.add_(e_yy).sub_(m2).add_(c2).mul_(m2.add_(c1))
    return num.div_(den)


def banded_dssim(
    x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5, pad: bool = True
) -> torch.Tensor:
    """Structural dissimilarity |1 - SSIM| / 2 of images in [0, 1] (B, C, H, W); `pad` as in ssim_map."""
    return banded_ssim_map(x, y, window, sigma, pad=pad).sub_(1).mul_(-0.5).abs_()

CASES = [
    Case("MFS soft mask: Gaussian 5x5, sigma 3, replicate (filters.gaussian_blur)", "kornia.filters.gaussian_blur2d",
         lambda d: (_mask(8, 256, d),), lambda m: gaussian_blur(m, 3.0, 5, mode="replicate"),
         lambda m: kornia.filters.gaussian_blur2d(m, 5, (3.0, 3.0), border_type="replicate")),
    Case("elastic field smoothing: Gaussian 31x31, sigma 5.1, reflect (filters.gaussian_blur)",
         "kornia.filters.gaussian_blur2d", lambda d: (torch.rand(8, 2, 64, 64, generator=torch.Generator().manual_seed(4)).to(d),),
         lambda x: gaussian_blur(x, 5.12, 31), lambda x: kornia.filters.gaussian_blur2d(x, 31, (5.12, 5.12))),
    Case("MFS soft mask: erosion by a 5x5 square (filters.erode)", "kornia.morphology.erosion",
         lambda d: (_mask(8, 256, d),), lambda m: erode(m, 2),
         lambda m: kornia.morphology.erosion(m, torch.ones(5, 5, device=m.device))),
    Case("MFS window choice: DSSIM map, 11x11 sigma 1.5, valid (ssim.dssim_map before kornia)", "kornia.metrics.ssim",
         lambda d: (_images(8, 170, d), _images(8, 170, d, seed=5)), lambda x, y: banded_dssim(x, y, pad=False),
         lambda x, y: kornia.metrics.ssim(x, y, 11, eps=0.0, padding="valid").sub(1).mul(-0.5).abs()),
    Case("DA geometry: affine warp 256 -> 224, bilinear, zeros (da.affine_grid + grid_sample)",
         "kornia.geometry.transform.warp_affine", _warp_inputs, lambda x, m: da.warp_images(x, m, 224),
         lambda x, m: kornia.geometry.transform.warp_affine(x, m, (224, 224), align_corners=True)),
    Case("DA geometry as the train transform runs it: image + face mask through one grid (pipeline)",
         "kornia.geometry.transform.warp_affine, once per tensor", _warp_pair_inputs, _warp_pair_ours, _warp_pair_kornia),
    Case("DA colour: saturation, brightness, gamma per sample (da._colour)",
         "torchvision adjust_saturation/brightness/gamma",
         lambda d: (_images(8, 224, d), _per_sample(8, 0.5, 1.15, d), _per_sample(8, 0.5, 1.5, d, 2), _per_sample(8, 0.6, 1.4, d, 3)),
         _colour_ours, _colour_tv,
         why="torchvision clamps after saturation and again after brightness, ours once after both; grey weights 0.2989 vs 0.299"),
    Case("DA blur: Gaussian 5x5, per-sample sigma, reflect (da._blur)", "kornia.filters.gaussian_blur2d",
         lambda d: (_images(8, 224, d), _per_sample(8, 0.1, 2.0, d)), _blur_ours, _blur_kornia),
    Case("DA JPEG round trip, quality 15-80 (jpeg.batched_roundtrip)", "kornia.enhance.jpeg_codec_differentiable",
         lambda d: (_images(8, 224, d), _per_sample(8, 15, 80, d).round()), _jpeg_ours, _jpeg_kornia,
         why="kornia rounds the DCT coefficients with a differentiable approximation of round"),
    Case("DA JPEG round trip, quality 15-80 (jpeg.batched_roundtrip)", "torchvision.io encode_jpeg/decode_jpeg (libjpeg)",
         lambda d: (_images(8, 224, d), _per_sample(8, 15, 80, d).round()), _jpeg_ours, _jpeg_tv,
         why="libjpeg: integer DCT, 8-bit input/output, its own chroma filters"),
    Case("MFS global mask: elastic deformation (elastic.elastic_deform)", "kornia.geometry.transform.elastic_transform2d",
         _elastic_inputs, _elastic_ours, _elastic_kornia, compare=False,
         why="different random fields: ours draws the noise on a 64-px grid and upsamples the smoothed field"),
    Case("Table 4 blur: Gaussian 13x13, sigma 13/6, reflect (perturb.blur)", "kornia.filters.gaussian_blur2d",
         lambda d: (_images(16, 224, d),), lambda x: perturb.blur(x, 13),
         lambda x: kornia.filters.gaussian_blur2d(x, 13, (13 / 6, 13 / 6))),
    Case("Table 4 saturation 0.2 (perturb.saturation)", "torchvision adjust_saturation",
         lambda d: (_images(16, 224, d),), lambda x: perturb.saturation(x, 0.2), lambda x: TF.adjust_saturation(x, 0.2),
         why="grey weights 0.2989 vs 0.299, and torchvision clamps"),
    Case("SBI blend mask: erosion by a per-sample rectangle (sbi_ops.erode_rect)", "kornia.morphology.erosion",
         _sbi_erode_inputs, sbi_ops.erode_rect, _sbi_erode_kornia),
    Case("SBI blend mask: Gaussian, per-sample sigma, zeros outside (sbi_ops.gaussian_bands)",
         "kornia.filters.gaussian_blur2d", _sbi_blur_inputs, _sbi_blur_ours, _sbi_blur_kornia),
]


def _time(fn: Callable, args: tuple, dev: torch.device, calls: int) -> float:
    """Seconds per call over `calls` calls."""
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(calls):
        fn(*args)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / calls


def measure(case: Case, dev: torch.device, reps: int) -> dict:
    args = case.make(dev)
    with torch.no_grad():
        a, b = case.ours(*args), case.theirs(*args)
        diff = float((a.float() - b.float()).abs().max()) if case.compare and a.shape == b.shape else float("nan")
        once = _time(case.ours, args, dev, 1) + _time(case.theirs, args, dev, 1)
        calls = max(1, min(50, int(0.2 / max(once, 1e-6))))  # ~0.1 s per side and round
        ours, theirs = [], []
        for _ in range(reps):
            ours.append(_time(case.ours, args, dev, calls))
            theirs.append(_time(case.theirs, args, dev, calls))
    return {"ours_ms": 1e3 * statistics.median(ours), "lib_ms": 1e3 * statistics.median(theirs), "diff": diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--device", nargs="+", default=["cpu", *(["cuda"] if torch.cuda.is_available() else [])])
    ap.add_argument("--only", default="", help="run the cases whose op contains this text")
    args = ap.parse_args()
    print(f"# torch {torch.__version__}, kornia {kornia.__version__}; load average {os.getloadavg()[0]:.1f}; "
          f"median of {args.reps} rounds", flush=True)  # fmt: skip
    runs = [("cpu", t) for t in args.threads if "cpu" in args.device] + [("cuda", None) for d in args.device if d == "cuda"]
    head = ["op", "library"] + [f"{d}{'' if t is None else f' {t}t'} ours / lib ms (ratio)" for d, t in runs] + ["max |diff|"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head), flush=True)
    for case in CASES:
        if args.only not in f"{case.op} {case.library}":
            continue
        cells, diff = [], float("nan")
        for dev, threads in runs:
            if threads is not None:
                torch.set_num_threads(threads)
            r = measure(case, torch.device(dev), args.reps)
            diff = r["diff"] if dev == "cpu" or diff != diff else diff
            cells.append(f"{r['ours_ms']:.2f} / {r['lib_ms']:.2f} ({r['lib_ms'] / r['ours_ms']:.2f})")
        shown = f"{diff:.1e}" if diff == diff else "n/a"
        print(f"| {case.op} | {case.library} | " + " | ".join(cells) + f" | {shown} ({case.why}) |", flush=True)


if __name__ == "__main__":
    main()
