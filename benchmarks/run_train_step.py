"""End-to-end training step (data + MFS/DA + forward/backward/step) vs the model-only step.

    .venv/bin/python benchmarks/run_train_step.py [--batch 8] [--steps 6] [--reps 3]
        [--store ROOT DATASET SPLIT] [--workers 1] [--device cpu|cuda|auto] [--background]

Model-only: a timm ResNet-34 (random init, 2 classes) forward + cross-entropy backward + Adam step
on batches that were transformed beforehand. End-to-end: the next batch from a torch DataLoader
over a frame store (iid.data.datamodule.StoreBatches + iid.data.sampling.RandomBatchSampler, the
worker only reads bytes), moved to the device, MFS + DA by iid.augment.pipeline.build_train_transform
there, normalised, then the same step. Prints both per-step times and model-only / end-to-end
(the share of the step spent in the model; target >= 0.9), with the load average. Without --store
a store of fabricated canvases (benchmarks/run_augment.make_batch) is written to a temporary folder.
--background also times the alternative of transforming batch i+1 in a background thread while
the model steps on batch i. On CUDA the step runs in bf16 autocast, channels-last.
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
import torch.nn.functional as F
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
    """ResNet-34 + Adam; `__call__(images01, labels)` is one training step (images in [0, 1])."""

    def __init__(self, device: torch.device) -> None:
        import timm

        self.device = device
        self.model = timm.create_model("resnet34", pretrained=False, num_classes=2).to(device)
        cfg = self.model.pretrained_cfg
        self.mean = torch.tensor(cfg["mean"], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg["std"], device=device).view(1, 3, 1, 1)
        self.cuda = device.type == "cuda"
        if self.cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=3.6e-4)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        x = (images - self.mean) / self.std
        if self.cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            loss = F.cross_entropy(self.model(x), labels)
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
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    tmp = tempfile.TemporaryDirectory()
    store = FrameStore(*args.store) if args.store else fabricate_store(Path(tmp.name))
    per_block = args.steps
    loader = loader_for(store, args.batch, (3 + 3 * args.reps) * (per_block + 1), args.workers,
                        pin=device.type == "cuda")
    batches = iter(loader)
    tf = build_train_transform({}, {}, seed=0)
    step = Step(device)
    print(f"ResNet-34 train step, batch {args.batch}, {device}, torch threads {torch.get_num_threads()}, "
          f"{store!r}, {args.workers} loader worker(s), load average {os.getloadavg()[0]:.2f}")

    # Model-only: the same kind of batches, transformed beforehand.
    fixed = [tf(to_device(next(batches), device)) for _ in range(per_block)]

    def model_only() -> float:
        t0 = time.perf_counter()
        for b in fixed:
            step(b["image"], b["label"])
        return (time.perf_counter() - t0) / per_block

    # End-to-end, transform inline (where Lightning's on_after_batch_transfer runs it). Chosen over a
    # background thread: on CPU the step's GEMMs already use every core (intra-op threads), so a
    # concurrent transform only takes cores from them, and the model's OpenMP barriers then wait for
    # a descheduled thread; the transform is instead made cheap enough to be negligible. On a GPU the
    # transform is queued on the device like the step.
    tf_time: list[float] = []

    def end_to_end() -> float:
        t0 = time.perf_counter()
        for _ in range(per_block):
            b = to_device(next(batches), device)
            t1 = time.perf_counter()
            b = tf(b)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            tf_time.append(time.perf_counter() - t1)
            step(b["image"], b["label"])
        return (time.perf_counter() - t0) / per_block

    helper = ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(1,))

    def background() -> float:
        """Batch i+1 read and transformed by a helper thread (one intra-op thread) during step i."""
        fut = helper.submit(lambda: tf(to_device(next(batches), device)))
        t0 = time.perf_counter()
        for _ in range(per_block):
            b = fut.result()
            fut = helper.submit(lambda: tf(to_device(next(batches), device)))
            step(b["image"], b["label"])
        fut.result()
        return (time.perf_counter() - t0) / per_block

    model_only(), end_to_end()  # warm-up
    m_t, e_t, g_t = [], [], []
    for _ in range(args.reps):
        m_t.append(model_only())
        e_t.append(end_to_end())
        if args.background:
            g_t.append(background())
    m, e = statistics.median(m_t), statistics.median(e_t)
    print(f"model-only step:                 {m * 1000:8.1f} ms")
    print(f"end-to-end step (inline MFS+DA): {e * 1000:8.1f} ms   model-only / end-to-end = {m / e:.3f} "
          f"(target >= 0.9); transform {statistics.median(tf_time) * 1000:.1f} ms of it")
    if g_t:
        g = statistics.median(g_t)
        print(f"end-to-end, background thread:  {g * 1000:8.1f} ms   model-only / end-to-end = {m / g:.3f}")
    print(f"(medians of {args.reps} blocks of {per_block} steps, interleaved; load average now "
          f"{os.getloadavg()[0]:.2f})")
    helper.shutdown()
    tmp.cleanup()


if __name__ == "__main__":
    main()
