"""Frame-store read speed: frames/s read by one worker from the page cache (aim: >= 2,000 at S=256).

    .venv/bin/python benchmarks/bench_store.py [--rows 2048] [--size 256] [--batch 128] [--dir DIR]

Writes a store of random frames (no prepare needed), warms the page cache by reading it once,
then times random batches (rows drawn with replacement, as in training) through each layer:
the numpy reader, the torch Dataset (one fancy read per batch vs one read per sample), and a
DataLoader with one worker process (what training sees, including the shared-memory hand-off).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from iid.data.datamodule import StoreBatches
from iid.data.records import VideoRecord
from iid.data.sampling import RandomBatchSampler
from iid.data.store import FrameStore


def write_random_store(root: Path, rows: int, size: int, per_video: int = 32) -> None:
    d = root / "bench" / "train"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n_videos = -(-rows // per_video)
    recs = [VideoRecord("bench", "real" if v % 2 == 0 else "Deepfakes", f"{v:04d}", v % 2, "train", "x.mp4",
                        (f"{v:04d}",)) for v in range(n_videos)]
    shapes = {"frames": ((rows, size, size, 3), np.uint8), "sources": ((rows, size, size, 3), np.uint8),
              "masks": ((rows, size, size), np.uint8), "landmarks": ((rows, 68, 2), np.float32)}
    for name, (shape, dtype) in shapes.items():
        mm = np.lib.format.open_memmap(d / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
        for start in range(0, rows, 256):  # chunks: keeps the writer's memory small
            chunk = mm[start : start + 256]
            chunk[:] = rng.integers(0, 256, chunk.shape, dtype=np.uint8) if dtype == np.uint8 else rng.random(chunk.shape)
        mm.flush()
        del mm
    index = [{"key": recs[i // per_video].key, "frame": i % per_video, "label": recs[i // per_video].label,
              "identity": recs[i // per_video].identity, "has_source": recs[i // per_video].label == 1}
             for i in range(rows)]
    (d / "index.json").write_text(json.dumps(index))
    (d / "videos.json").write_text(json.dumps([r.to_dict() for r in recs]))


def rate(fn, frames_per_call: int, min_s: float = 3.0) -> float:
    fn()  # warm-up
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s:
        fn()
        calls += 1
    return calls * frames_per_call / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2048)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--dir", type=Path, default=None, help="store location (default: a temp dir, removed after)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        write_random_store(root, args.rows, args.size)
        store = FrameStore(root, "bench", "train")
        for a in store.arrays.values():  # warm the page cache
            a.sum(dtype=np.uint64) if a.dtype == np.uint8 else a.sum()
        labels = store.label
        sampler = RandomBatchSampler(np.arange(len(store)), labels, args.batch, 10**6, seed=0)
        batches = iter(sampler)
        ds = StoreBatches(store, np.arange(len(store.identities)))
        b = args.batch

        def per_sample():
            rows = next(batches)
            items = [ds[[r]] for r in rows]
            return {k: torch.cat([it[k] for it in items]) for k in items[0]}

        def contiguous():
            t = ds[next(batches)]
            return t["image"].contiguous(), t["source"].contiguous()

        results = {
            "numpy read_batch": rate(lambda: store.read_batch(next(batches)), b),
            "Dataset, one read per batch (channels_last view)": rate(lambda: ds[next(batches)], b),
            "Dataset, per batch + NCHW .contiguous()": rate(contiguous, b),
            "Dataset, one read per sample + cat": rate(per_sample, b),
        }
        for shared in (True, False):
            ds_w = StoreBatches(store, np.arange(len(store.identities)), shared_memory=shared)
            loader = DataLoader(ds_w, sampler=RandomBatchSampler(np.arange(len(store)), labels, b, 10**6, seed=1),
                                batch_size=None, num_workers=1, prefetch_factor=4)
            it = iter(loader)
            how = "read into shared memory" if shared else "read, then copied to shared memory"
            results[f"DataLoader, 1 worker ({how})"] = rate(lambda it=it: next(it), b, min_s=5.0)
            del it, loader
    print(f"frame store read speed: S={args.size}, batch={b}, {args.rows} rows "
          f"({args.rows * (2 * 3 + 1) * args.size**2 / 2**30:.2f} GiB in the page cache), "
          f"{os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f}")
    for k, v in results.items():
        print(f"  {k:<60s} {v:10,.0f} frames/s")


if __name__ == "__main__":
    main()
