"""Generation time of the synthetic benchmark per scale (the issue asks: default <= 3 min on 2 cores).

Run: `.venv/bin/python benchmarks/bench_synth.py [tiny small default] [workers=N]`; prints one line per
scale (seconds, videos, frames, MB) and writes nothing outside a temporary folder. The machine is
shared: note the load average printed beside the numbers when comparing runs.

`.venv/bin/python benchmarks/bench_synth.py gap out=DIR [scale=default] [epochs=8]` checks what the
benchmark is for: a small CNN trained as a binary real/fake classifier on synthetic FF++ (train split,
aligned 64x64 crops from the landmark sidecars) scores high video AUC on FF++ test and lower on the
unseen identities and methods of Celeb-DF and DFDC (CPU, ~10 min at default on a busy 2-core machine).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from iid.synth import generate


def bench(scale: str, workers: int | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        out = generate(Path(tmp) / scale, scale=scale, seed=0, workers=workers)
        seconds = time.perf_counter() - t0
        videos = list(out.rglob("*.mp4"))
        mb = sum(p.stat().st_size for p in out.rglob("*")) / 2**20
    from iid.synth import SCALES

    return {"scale": scale, "seconds": seconds, "videos": len(videos), "frames": len(videos) * SCALES[scale].frames,
            "MB": mb, "load_before": load}  # fmt: skip


def _crops(path: Path, every: int = 1, side: int = 64):
    """Face crops aligned by eye centres and mouth centre (from the sidecar), uint8 (N, side, side, 3)."""
    import cv2
    import numpy as np

    from iid.synth.video import read_video

    dst = np.array([[0.32, 0.38], [0.68, 0.38], [0.5, 0.74]], np.float32) * side
    frames, lms = read_video(path), np.load(path.with_name(path.stem + ".landmarks.npy"))
    out = []
    for f, lm in list(zip(frames, lms))[::every]:
        src = np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[48:68].mean(0)]).astype(np.float32)
        m, _ = cv2.estimateAffinePartial2D(src, dst)
        out.append(cv2.warpAffine(f, m, (side, side), flags=cv2.INTER_AREA))
    return np.stack(out)


def gap(out: Path, scale: str = "default", epochs: int = 8) -> dict[str, float]:
    """In-dataset vs cross-dataset video AUC of a small binary CNN trained on synthetic FF++."""
    import csv
    import json

    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score
    from torch import nn

    from iid.synth import ensure
    from iid.synth.methods import FFPP_METHODS

    root = ensure(out, scale, 0)
    torch.manual_seed(0)
    ff = root / "FaceForensics++"
    splits = {s: {v for p in json.loads((ff / f"splits/{s}.json").read_text()) for v in p} for s in ("train", "test")}

    def ff_videos(split: str) -> list[tuple[Path, int]]:
        vids = [(ff / f"original_sequences/youtube/c23/videos/{v}.mp4", 0) for v in sorted(splits[split])]
        for m in FFPP_METHODS:
            vids += [(p, 1) for p in sorted((ff / f"manipulated_sequences/{m}/c23/videos").glob("*.mp4")) if p.stem[:3] in splits[split]]
        return vids

    xs, ys = [], []
    for p, y in ff_videos("train"):
        c = _crops(p, 1 if y == 0 else len(FFPP_METHODS) - 1)  # roughly balanced real/fake frames
        xs.append(c)
        ys += [y] * len(c)
    x_all = torch.tensor(np.concatenate(xs)).permute(0, 3, 1, 2).float() / 255
    y_all = torch.tensor(ys)

    def block(i: int, o: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]

    net = nn.Sequential(*block(3, 32), nn.MaxPool2d(2), *block(32, 64), nn.MaxPool2d(2), *block(64, 96), nn.MaxPool2d(2),
                        *block(96, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 2))  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(x_all)).split(64):
            x = x_all[idx].flip(3) if torch.rand(1) < 0.5 else x_all[idx]
            loss = nn.functional.cross_entropy(net(x), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()

    def auc(videos: list[tuple[Path, int]]) -> float:
        scores = []
        with torch.no_grad():
            for p, _ in videos:
                x = torch.tensor(_crops(p, 2)).permute(0, 3, 1, 2).float() / 255
                scores.append(net(x).softmax(1)[:, 1].mean().item())  # video score = mean frame score
        return float(roc_auc_score([y for _, y in videos], scores))

    cd = root / "Celeb-DF-v2"
    celeb = [(cd / rel, 1 - int(lab)) for lab, rel in (ln.split(" ") for ln in (cd / "List_of_testing_videos.txt").read_text().splitlines())]
    with open(root / "DFDC/labels.csv", newline="") as f:
        dfdc = [(root / "DFDC/videos" / r["filename"], int(r["label"])) for r in csv.DictReader(f)]
    return {"FF++ test (in-dataset)": auc(ff_videos("test")), "Celeb-DF (cross)": auc(celeb), "DFDC (cross)": auc(dfdc)}


def main(argv: list[str]) -> None:
    if argv and argv[0] == "gap":
        opts = dict(a.split("=", 1) for a in argv[1:])
        res = gap(Path(opts.get("out", "data/synthetic")), opts.get("scale", "default"), int(opts.get("epochs", 8)))
        for name, value in res.items():
            print(f"{name:24s} video AUC = {value:.3f}")
        return
    workers = None
    scales = []
    for a in argv:
        if a.startswith("workers="):
            workers = int(a.split("=", 1)[1])
        else:
            scales.append(a)
    print(f"cores={os.cpu_count()}")
    for scale in scales or ["tiny", "small", "default"]:
        r = bench(scale, workers)
        print(f"scale={r['scale']:8s} {r['seconds']:7.1f} s  videos={r['videos']:5d}  encoded frames={r['frames']:6d}  "
              f"size={r['MB']:.0f} MB  load avg before={r['load_before']:.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
