"""End-to-end training step (data + MFS/DA + forward/backward/step) vs the model-only step.

    .venv/bin/python benchmarks/run_train_step.py [--batch 8] [--steps 6] [--reps 3]
        [--store ROOT DATASET SPLIT] [--workers 1] [--device cpu|cuda|auto] [--background]
        [--backbone resnet34] [--model binary|caddm] [--size 224]

    # the mini recipe (EfficientNet-Lite0, the full model, 224 px, batch 32):
    .venv/bin/python benchmarks/run_train_step.py --backbone efficientnet_lite0 --model caddm --batch 32

Model-only: the suite's network of the `model` family (binary: backbone + pooling + linear; caddm:
plus the ADM, iid.models.families) forward + its criterion's backward + Adam step, on batches that
were transformed beforehand (random initial weights: the cost does not depend on them). End-to-end: the next batch from a torch DataLoader
over a frame store (iid.data.datamodule.StoreBatches + iid.data.sampling.RandomBatchSampler, the
worker only reads bytes), moved to the device, MFS + DA by iid.augment.pipeline.build_train_transform
there, normalised, then the same step. Prints the median per-step times, model-only / end-to-end
(target >= 0.9), and the model's share of the end-to-end steps themselves (data, transform and
model timed within each step: the same batches at the same moments, so it does not drift with a
shared machine's load as separately timed blocks do), with the load average. Without --store
a store of fabricated canvases (benchmarks/run_augment.make_batch) is written to a temporary folder.
--background also times the alternative of transforming batch i+1 in a background thread while
the model steps on batch i. The network is channels-last on every device (as the trainers run it); on CUDA the step runs in bf16
autocast.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).parent))

from iid.augment.pipeline import build_train_transform  # noqa: E402
from iid.data.datamodule import StoreBatches  # noqa: E402
from iid.data.records import VideoRecord  # noqa: E402
from iid.data.sampling import RandomBatchSampler  # noqa: E402
from iid.data.store import FrameStore  # noqa: E402


def fabricate_store(root: Path, rows: int = 256, seed: int = 0) -> FrameStore:
    """A frame store (docs/interfaces.md layout) of `rows` fabricated canvases, half fakes with a source."""
    from run_augment import make_batch

    b = make_batch(rows, seed=seed)
    d = root / "fabricated" / "train"
    d.mkdir(parents=True)
    np.save(d / "frames.npy", b["image"].permute(0, 2, 3, 1).contiguous().numpy())
    np.save(d / "sources.npy", b["source"].permute(0, 2, 3, 1).contiguous().numpy())
    np.save(d / "masks.npy", b["face_mask"][:, 0].numpy())
    np.save(d / "landmarks.npy", b["landmarks"].numpy().astype(np.float32))
    real = VideoRecord("fabricated", "real", "000", 0, "train", "", ("a",))
    fake = VideoRecord("fabricated", "Deepfakes", "000_001", 1, "train", "", ("a", "b"), source_key=real.key)
    (d / "videos.json").write_text(json.dumps([real.to_dict(), fake.to_dict()]))
    labels = b["label"].tolist()
    index = [{"key": (fake if y else real).key, "frame": i, "label": y, "identity": "a", "has_source": bool(y)}
             for i, y in enumerate(labels)]
    (d / "index.json").write_text(json.dumps(index))
    return FrameStore(root, "fabricated", "train")


def loader_for(store: FrameStore, batch: int, batches: int, workers: int, pin: bool) -> DataLoader:
    rows = np.arange(len(store))
    sampler = RandomBatchSampler(rows, store.label[rows], batch, batches, balance=True, seed=0)
    return DataLoader(StoreBatches(store, np.arange(len(store.identities))), sampler=sampler, batch_size=None,
                      num_workers=workers, pin_memory=pin, persistent_workers=workers > 0)


class Step:
    """The family's network + criterion + Adam; `__call__(batch)` is one training step on a transformed
    batch (`image` in [0, 1], `label`, and the ADM's `boxes` / `has_box` where the family uses them)."""

    def __init__(self, device: torch.device, backbone: str, family: str) -> None:
        from iid.models.families import build_family

        self.device = device
        self.model, self.criterion = build_family({"family": family}, {"name": backbone, "pretrained": False})
        self.model.to(device)
        self.mean = torch.tensor(self.model.mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(self.model.std, device=device).view(1, 3, 1, 1)
        self.cuda = device.type == "cuda"
        # channels_last as both trainers (conf/trainer/cpu.yaml, gpu.yaml) train
        self.model = self.model.to(memory_format=torch.channels_last)
        params = list(self.model.parameters()) + list(self.criterion.parameters())
        self.opt = torch.optim.Adam(params, lr=3.6e-4)
        self.params = sum(p.numel() for p in params)

    def __call__(self, batch: dict) -> None:
        x = (batch["image"] - self.mean) / self.std
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            loss = self.criterion(self.model(x), batch)["loss"]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.cuda:
            torch.cuda.synchronize(self.device)


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8, help="per step (the CPU preset trains at 8)")
    ap.add_argument("--steps", type=int, default=6, help="steps per timed block")
    ap.add_argument("--reps", type=int, default=3, help="timed blocks of each kind, interleaved")
    ap.add_argument("--store", nargs=3, metavar=("ROOT", "DATASET", "SPLIT"), help="a prepared frame store")
    ap.add_argument("--workers", type=int, default=1, help="data-loader workers (they only read bytes)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--background", action="store_true", help="also time the transform in a background thread")
    ap.add_argument("--backbone", default="resnet34", help="our backbone name (iid.models.backbones.TIMM_NAMES)")
    ap.add_argument("--model", default="binary", choices=["binary", "caddm"], help="binary, or caddm (with the ADM)")
    ap.add_argument("--size", type=int, default=224, help="the transform's output size (image_size)")
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    tmp = tempfile.TemporaryDirectory()
    store = FrameStore(*args.store) if args.store else fabricate_store(Path(tmp.name))
    per_block = args.steps
    loader = loader_for(store, args.batch, (3 + 3 * args.reps) * (per_block + 1), args.workers,
                        pin=device.type == "cuda")
    batches = iter(loader)
    tf = build_train_transform({}, {}, out_size=args.size, seed=0)
    step = Step(device, args.backbone, args.model)
    print(f"{args.backbone} {args.model} ({step.params / 1e6:.2f}M parameters) train step at {args.size} px, "
          f"batch {args.batch}, {device}, torch threads {torch.get_num_threads()}, "
          f"{store!r}, {args.workers} loader worker(s), load average {os.getloadavg()[0]:.2f}")

    # Model-only: the same kind of batches, transformed beforehand.
    fixed = [tf(to_device(next(batches), device)) for _ in range(per_block)]
    m_t: list[float] = []  # per step

    def model_only() -> None:
        for b in fixed:
            t0 = time.perf_counter()
            step(b)
            m_t.append(time.perf_counter() - t0)

    # End-to-end, transform inline (where Lightning's on_after_batch_transfer runs it). Chosen over a
    # background thread: on CPU the step's GEMMs already use every core (intra-op threads), so a
    # concurrent transform only takes cores from them, and the model's OpenMP barriers then wait for
    # a descheduled thread; the transform is instead made cheap enough to be negligible. On a GPU the
    # transform is queued on the device like the step.
    e_t: list[tuple[float, float, float]] = []  # per step: data (next batch + transfer), transform, model

    def end_to_end() -> None:
        for _ in range(per_block):
            t0 = time.perf_counter()
            b = to_device(next(batches), device)
            t1 = time.perf_counter()
            b = tf(b)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t2 = time.perf_counter()
            step(b)
            e_t.append((t1 - t0, t2 - t1, time.perf_counter() - t2))

    helper = ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(1,))
    g_t: list[float] = []

    def background() -> None:
        """Batch i+1 read and transformed by a helper thread (one intra-op thread) during step i."""
        fut = helper.submit(lambda: tf(to_device(next(batches), device)))
        for _ in range(per_block):
            t0 = time.perf_counter()
            b = fut.result()
            fut = helper.submit(lambda: tf(to_device(next(batches), device)))
            step(b)
            g_t.append(time.perf_counter() - t0)
        fut.result()

    model_only(), end_to_end()  # warm-up
    m_t.clear(), e_t.clear()
    for _ in range(args.reps):
        model_only()
        end_to_end()
        if args.background:
            background()
    med = statistics.median
    m = med(m_t)
    e = med([sum(x) for x in e_t])
    d, t, s = (med([x[i] for x in e_t]) for i in range(3))
    share = sum(x[2] for x in e_t) / sum(sum(x) for x in e_t)
    print(f"model-only step:                 {m * 1000:8.1f} ms")
    print(f"end-to-end step (inline MFS+DA): {e * 1000:8.1f} ms   model-only / end-to-end = {m / e:.3f} (target >= 0.9)")
    print(f"  of which data {d * 1000:.1f} ms, MFS+DA {t * 1000:.1f} ms, model {s * 1000:.1f} ms: "
          f"the model's share of the end-to-end steps = {share:.3f}")
    if g_t:
        g = med(g_t)
        print(f"end-to-end, background thread:  {g * 1000:8.1f} ms   model-only / end-to-end = {m / g:.3f}")
    print(f"(medians over {args.reps} interleaved blocks of {per_block} steps each; load average now "
          f"{os.getloadavg()[0]:.2f})")
    helper.shutdown()
    tmp.cleanup()


if __name__ == "__main__":
    main()
