"""Self-Blended Images: the batched stage (iid.augment.sbi) vs the per-sample NumPy/OpenCV reference
(benchmarks/reference_sbi.py), per pseudo-fake.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_sbi.py [--n 64] [--size 256] [--reps 3] [--threads 1 2]

Both make `--n` pseudo-fakes from the same n real canvases (smooth random faces in an elliptic hull,
the frame store's layout), with the default `sbi=on` settings; the batched stage blends all n at once
(SelfBlend.blend), the reference one at a time. Torch and OpenCV get the same thread count, for each
count of --threads; runs are interleaved so a shared machine's load hits both alike; medians are
printed with the load average. A check line compares the two outputs' statistics (blend-mask area,
mean change inside the mask): the same steps give the same distributions. The batched stage takes
the shortcuts its module docstring lists (mask on a half-resolution crop, elastic noise on a 4-px
grid, image work only on the window around the masks); the reference does SBI's full-canvas steps,
as SBI's own loader does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))

from reference_sbi import self_blend  # noqa: E402

from iid.augment.config import sbi_config  # noqa: E402
from iid.augment.sbi import SelfBlend  # noqa: E402


def real_canvases(n: int, s: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    face = ((((xx - s / 2) / (0.27 * s)) ** 2 + ((yy - 0.53 * s) / (0.35 * s)) ** 2) < 1).to(torch.uint8)
    base = F.interpolate(torch.rand(n, 3, s // 16, s // 16, generator=g), size=(s, s), mode="bicubic").clamp(0, 1)
    detail = F.interpolate(torch.rand(n, 3, s // 2, s // 2, generator=g), size=(s, s), mode="bilinear")
    image = ((0.7 * base + 0.3 * detail) * 255).round().to(torch.uint8)
    return image.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2), face.expand(n, 1, s, s).clone()


def stats(fakes: np.ndarray, reals: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
    """(mean share of the canvas with weight > 0, mean |change| inside weight > 0.5) over the samples."""
    area = float((masks > 0).mean())
    inside = masks > 0.5
    diff = np.abs(fakes.astype(np.float32) - reals.astype(np.float32)).mean(-1)
    return area, float(diff[inside].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args()
    image, face = real_canvases(a.n, a.size)
    cfg = sbi_config({})
    stage = SelfBlend(cfg, seed=0)
    np_images = image.permute(0, 2, 3, 1).numpy()
    np_faces = face[:, 0].numpy()

    def run_reference(threads: int):
        cv2.setNumThreads(threads)
        rng = np.random.default_rng(0)
        return [self_blend(np_images[i], np_faces[i], rng, cfg) for i in range(a.n)]

    def run_batched(threads: int, keep: bool = False):
        torch.set_num_threads(threads)
        return stage.blend(image, face, stage.generator(image.device), keep=keep)

    times: dict[str, list[float]] = {}
    outs = {}
    for threads in a.threads:  # warm-up
        run_reference(threads), run_batched(threads)
    for _ in range(a.reps):
        for threads in a.threads:
            for name, fn in ((f"reference {threads}t", run_reference), (f"batched {threads}t", run_batched)):
                t0 = time.perf_counter()
                outs[name.split()[0]] = fn(threads)
                times.setdefault(name, []).append((time.perf_counter() - t0) / a.n * 1e3)
    print(f"load average {os.getloadavg()}, torch {torch.__version__}, cv2 {cv2.__version__}, "
          f"{a.n} pseudo-fakes of {a.size}x{a.size}, {a.reps} reps (medians)")  # fmt: skip
    for threads in a.threads:
        ref = statistics.median(times[f"reference {threads}t"])
        bat = statistics.median(times[f"batched {threads}t"])
        print(f"{threads} thread(s): reference {ref:.2f} ms/image, batched {bat:.2f} ms/image, "
              f"speedup {ref / bat:.2f}x")  # fmt: skip
    ref = outs["reference"]
    res = run_batched(a.threads[0], keep=True)  # the blend weights too, for the check (not timed)
    r_area, r_diff = stats(np.stack([f for f, _, _ in ref]), np_images, np.stack([m for _, m, _ in ref]))
    b_area, b_diff = stats(res.fake.permute(0, 2, 3, 1).numpy(), np_images, res.weight.numpy())
    print(f"check: blend-mask area {r_area:.3f} (reference) vs {b_area:.3f} (batched); "
          f"mean change inside {r_diff:.1f} vs {b_diff:.1f} (0..255)")  # fmt: skip


if __name__ == "__main__":
    main()
