"""ETD's training step against one ResNet-34: forward + backward at batch 8 on the CPU.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_etd.py [--batch 8] [--reps 5] [--blocks 4] [--backbone resnet34]

Times forward + loss + backward (no optimiser step) of `model=etd` (n blocks of the backbone, the
Local and Global Information Losses with uncertainty weights) and of `model=binary` on the same
backbone (one ResNet-34, cross-entropy), both in training mode on the same random 224x224 batch.
Runs alternate so that a shared machine's load hits both alike; medians are printed with the load
average. ETD runs n whole backbones on the same image, so the expected ratio is about n.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from iid.models.families import build_family


def step_time(net: torch.nn.Module, criterion: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    t0 = time.perf_counter()
    parts = criterion(net(x), {"label": y})
    parts["loss"].backward()
    net.zero_grad(set_to_none=True)
    criterion.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--backbone", default="resnet34")
    a = ap.parse_args()
    torch.manual_seed(0)
    backbone = {"name": a.backbone, "pretrained": False}
    etd = build_family({"family": "etd", "blocks": a.blocks}, backbone)
    one = build_family({"family": "binary"}, backbone)
    for net, crit in (etd, one):
        net.train(), crit.train()
    x = torch.randn(a.batch, 3, 224, 224)
    y = torch.arange(a.batch) % 2
    step_time(*etd, x, y), step_time(*one, x, y)  # warm-up
    times: dict[str, list[float]] = {"etd": [], "one": []}
    for _ in range(a.reps):
        times["one"].append(step_time(*one, x, y))
        times["etd"].append(step_time(*etd, x, y))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"load average {os.getloadavg()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {a.batch}, {a.reps} reps (medians)")  # fmt: skip
    print(f"one {a.backbone} (model=binary): {med['one']:.3f} s/step")
    print(f"ETD, {a.blocks} x {a.backbone} (model=etd): {med['etd']:.3f} s/step")
    print(f"ratio ETD / one {a.backbone}: {med['etd'] / med['one']:.2f}x (range {min(times['etd']) / max(times['one']):.2f}"
          f"-{max(times['etd']) / min(times['one']):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
