"""MFS + DA throughput: batched torch transform vs the per-sample NumPy/OpenCV reference design.

    .venv/bin/python benchmarks/run_augment.py [--batch 128] [--reps 3] [--device auto|cpu|cuda]
        [--threads N] [--thp]

Both sides get the same inputs: a batch of `--batch` canvases 256x256 (half fakes with a source,
smooth random faces inside an elliptic hull), the default mfs=on / da=on settings. Prints images/s
of each and their ratio, measured in this one run. On CUDA it also times ResNet-34 (timm, random
init) bf16 forward+backward at the same batch size, the training step the transform must keep up with.
--thp sets THP_MEM_ALLOC_ENABLE=1 (torch's CPU allocator then backs big tensors with huge pages,
avoiding most page faults of fresh 50-100 MB tensors); it must be set before the first big allocation.
The load average is printed: the machine may be shared, and the ratio is only meaningful within one run.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from iid.augment.config import da_config, mfs_config
from iid.augment.pipeline import build_train_transform
from iid.augment.reference_numpy import reference_transform


def make_batch(b: int, s: int = 256, fake_share: float = 0.5, seed: int = 0) -> dict:
    """Fabricated DataModule batch (docs/interfaces.md): source = smooth image, fake = source with a
    re-textured face inside an elliptic hull."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    face = ((((xx - s / 2) / (0.27 * s)) ** 2 + ((yy - 0.53 * s) / (0.35 * s)) ** 2) < 1).to(torch.uint8)
    base = F.interpolate(torch.rand(b, 3, s // 16, s // 16, generator=g), size=(s, s), mode="bicubic").clamp(0, 1)
    detail = F.interpolate(torch.rand(b, 3, s // 4, s // 4, generator=g), size=(s, s), mode="bilinear")
    fake = base * (1 - face) + (0.75 * base + 0.25 * detail) * face
    label = (torch.rand(b, generator=g) < fake_share).long()
    t = torch.linspace(0, 2 * torch.pi, 69)[:-1]
    lm = torch.stack([s / 2 + 0.27 * s * torch.cos(t), 0.53 * s + 0.35 * s * torch.sin(t)], 1)
    return {
        "image": (fake * 255).round().to(torch.uint8),
        "source": (base * 255).round().to(torch.uint8),
        "has_source": label.bool(),
        "face_mask": face.expand(b, 1, s, s).clone(),
        "landmarks": lm.expand(b, 68, 2).clone(),
        "label": label,
        "identity": torch.zeros(b, dtype=torch.long),
        "video": torch.arange(b),
        "frame": torch.arange(b),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_batched(batch: dict, device: torch.device, reps: int) -> float:
    tf = build_train_transform({}, {}, seed=0)
    dev_batch = {k: v.to(device) for k, v in batch.items()}
    tf(dev_batch)  # warm-up (allocations, cuDNN/kernels)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        tf(dev_batch)
    _sync(device)
    return reps * len(batch["label"]) / (time.perf_counter() - t0)


def time_reference(batch: dict, reps: int) -> float:
    np_batch = {k: v.numpy() for k, v in batch.items()}
    mfs, da = mfs_config({}), da_config({})
    t0 = time.perf_counter()
    for r in range(reps):
        reference_transform(np_batch, mfs, da, seed=r)
    return reps * len(batch["label"]) / (time.perf_counter() - t0)


def time_resnet34(b: int, device: torch.device, reps: int = 10) -> float:
    import timm

    model = timm.create_model("resnet34", pretrained=False, num_classes=2).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(b, 3, 224, 224, device=device)
    y = torch.randint(0, 2, (b,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        step()
    _sync(device)
    return reps * b / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--fake-share", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
    ap.add_argument("--thp", action="store_true", help="THP_MEM_ALLOC_ENABLE=1 for torch's CPU allocator")
    args = ap.parse_args()
    if args.thp:
        os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    batch = make_batch(args.batch, fake_share=args.fake_share)
    print(f"MFS+DA, batch {args.batch} canvases 256 -> 224, {int(batch['label'].sum())} fakes, "
          f"torch threads {torch.get_num_threads()}, THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '0')}, "
          f"load average {os.getloadavg()[0]:.2f}")
    ref = time_reference(batch, max(1, args.reps))
    print(f"per-sample NumPy/OpenCV reference (CPU): {ref:8.1f} images/s")
    cpu = time_batched(batch, torch.device("cpu"), args.reps)
    print(f"batched torch on cpu:                    {cpu:8.1f} images/s   ratio {cpu / ref:.2f}x   "
          f"(load average now {os.getloadavg()[0]:.2f})")
    if device.type == "cuda":
        gpu = time_batched(batch, device, max(args.reps, 10))
        net = time_resnet34(args.batch, device)
        print(f"batched torch on {torch.cuda.get_device_name(device)}: {gpu:8.1f} images/s   ratio {gpu / ref:.1f}x")
        print(f"ResNet-34 bf16 fwd+bwd+Adam, batch {args.batch}: {net:8.1f} images/s; "
              f"transform time / step time = {net / gpu:.3f} (must be < 0.2)")


if __name__ == "__main__":
    main()
