"""MFS + DA throughput: batched torch transform vs the per-sample NumPy/OpenCV reference design.

    .venv/bin/python benchmarks/run_augment.py [--batch 128] [--reps 5] [--threads 1 2]
        [--device cpu|cuda|auto] [--thp]

Both sides get the same inputs: a batch of `--batch` canvases 256x256 (half fakes with a source,
smooth random faces inside an elliptic hull), the default mfs=on / da=on settings. The reference
(benchmarks/reference_mfs.py) runs one sample at a time; the batched transform runs the whole batch
with torch limited to N threads, for each N of --threads (OpenCV gets the first N). Runs are
interleaved (reference, batched at each N, reference, ...) so that a shared machine's load hits all
sides alike; medians are printed, with the load average.

--device cuda (or auto with a GPU) also times the transform on the GPU against a ResNet-34 (timm,
random init) bf16 forward + backward + Adam step at the same batch size: the training step the
transform must hide behind (target: transform time < 1/5 of the step).
--thp sets THP_MEM_ALLOC_ENABLE=1 (torch's CPU allocator then backs big tensors with huge pages);
it must be set before the first big allocation.
--stages also prints where the batched transform's time goes on one CPU thread: MFS (swap_faces),
DA's warp (image and face mask) and DA's photometric ops, each timed around its call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))

from iid.augment.config import da_config, mfs_config  # noqa: E402
from iid.augment.pipeline import build_train_transform  # noqa: E402


def make_batch(b: int, s: int = 256, fake_share: float = 0.5, seed: int = 0) -> dict:
    """Fabricated DataModule batch (docs/interfaces.md): source = smooth image, fake = source with a
    re-textured face inside an elliptic hull. image/source are channels-last views, as the store's."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    face = ((((xx - s / 2) / (0.27 * s)) ** 2 + ((yy - 0.53 * s) / (0.35 * s)) ** 2) < 1).to(torch.uint8)
    base = F.interpolate(torch.rand(b, 3, s // 16, s // 16, generator=g), size=(s, s), mode="bicubic").clamp(0, 1)
    detail = F.interpolate(torch.rand(b, 3, s // 4, s // 4, generator=g), size=(s, s), mode="bilinear")
    fake = base * (1 - face) + (0.75 * base + 0.25 * detail) * face
    label = (torch.rand(b, generator=g) < fake_share).long()
    t = torch.linspace(0, 2 * torch.pi, 69)[:-1]
    lm = torch.stack([s / 2 + 0.27 * s * torch.cos(t), 0.53 * s + 0.35 * s * torch.sin(t)], 1)

    def hwc_view(x: torch.Tensor) -> torch.Tensor:
        return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)

    return {
        "image": hwc_view(fake),
        "source": hwc_view(base),
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
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def resnet34_step(b: int, device: torch.device):
    """A ResNet-34 bf16-autocast forward + backward + Adam step on a fixed batch (closure)."""
    import timm

    model = timm.create_model("resnet34", pretrained=False, num_classes=2).to(device)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(b, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (b,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def stage_times(tf, batch: dict, reps: int) -> dict[str, float]:
    """Seconds per call of the transform and of its stages (one worker thread): each stage function
    wrapped with a timer for the duration."""
    import iid.augment.pipeline as pipeline

    spent: dict[str, float] = {}

    def timed(name: str, fn):
        def run(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
        return run

    saved = pipeline.swap_faces, pipeline.apply_photometric, tf._warp_chunk, tf.workers
    pipeline.swap_faces = timed("MFS (swap_faces)", saved[0])
    pipeline.apply_photometric = timed("DA photometric", saved[1])
    tf._warp_chunk = timed("DA warp (image + face mask)", saved[2])
    tf.workers = 1
    try:
        tf(batch)
        spent.clear()
        total = statistics.mean(_timed(lambda: tf(batch), torch.device("cpu")) for _ in range(reps))
    finally:
        pipeline.swap_faces, pipeline.apply_photometric, tf.workers = saved[0], saved[1], saved[3]
        del tf._warp_chunk
    return {"total": total, **{k: v / reps for k, v in spent.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="torch thread counts to time the batched transform at (OpenCV gets the first)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--fake-share", type=float, default=0.5)
    ap.add_argument("--thp", action="store_true", help="THP_MEM_ALLOC_ENABLE=1 for torch's CPU allocator")
    ap.add_argument("--stages", action="store_true", help="also time MFS, DA warp and DA photometric on 1 thread")
    args = ap.parse_args()
    if args.thp:
        os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
    import cv2
    from reference_mfs import reference_transform

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    batch = make_batch(args.batch, fake_share=args.fake_share)
    np_batch = {k: v.numpy() for k, v in batch.items()}
    mfs, da = mfs_config({}), da_config({})
    cv2.setNumThreads(args.threads[0])
    print(f"MFS+DA, batch {args.batch} canvases 256 -> 224, {int(batch['label'].sum())} fakes, "
          f"OpenCV threads {args.threads[0]}, THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', '0')}, "
          f"load average {os.getloadavg()[0]:.2f}")

    cpu = torch.device("cpu")
    tf = build_train_transform(mfs, da, seed=0)
    for n in args.threads:  # warm-up: workspaces, pools
        torch.set_num_threads(n)
        tf(batch)
    ref_t: list[float] = []
    tf_t: dict[int, list[float]] = {n: [] for n in args.threads}
    for r in range(args.reps):
        ref_t.append(_timed(lambda r=r: reference_transform(np_batch, mfs, da, seed=r), cpu))
        for n in args.threads:
            torch.set_num_threads(n)
            tf_t[n].append(_timed(lambda: tf(batch), cpu))
    b = args.batch
    ref = b / statistics.median(ref_t)
    print(f"per-sample NumPy/OpenCV reference (CPU):  {ref:8.1f} images/s")
    rate = {}
    for n in args.threads:
        rate[n] = b / statistics.median(tf_t[n])
        print(f"batched torch on cpu, {n} thread(s):     {rate[n]:8.1f} images/s   ratio {rate[n] / ref:.2f}x")
    if len(args.threads) > 1:
        lo = args.threads[0]
        print("  vs " + ", ".join(f"{n} threads {rate[n] / rate[lo]:.2f}x" for n in args.threads[1:])
              + f" the {lo}-thread rate")
    print(f"(medians of {args.reps}, interleaved; load average now {os.getloadavg()[0]:.2f})")
    if args.stages:
        torch.set_num_threads(1)
        parts = stage_times(tf, batch, args.reps)
        print(f"1 thread, per batch of {args.batch}: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in parts.items())
              + f"; the {5}x target is {b / (5 * ref) * 1000:.0f} ms for all of it")

    if device.type == "cuda":
        dev_batch = {k: v.to(device) for k, v in batch.items()}
        gtf = build_train_transform(mfs, da, seed=0)
        step = resnet34_step(b, device)
        for _ in range(3):
            gtf(dev_batch)
            step()
        reps = max(args.reps, 10)
        g_t = [_timed(lambda: gtf(dev_batch), device) for _ in range(reps)]
        s_t = [_timed(step, device) for _ in range(reps)]
        gt, st = statistics.median(g_t), statistics.median(s_t)
        print(f"batched torch on {torch.cuda.get_device_name(device)}: {b / gt:8.1f} images/s   "
              f"ratio {b / gt / ref:.1f}x the CPU reference")
        print(f"ResNet-34 bf16 fwd+bwd+Adam, batch {b}: {st * 1000:.1f} ms; transform {gt * 1000:.1f} ms = "
              f"{gt / st:.3f} of the step (target < 0.2)")


if __name__ == "__main__":
    main()
