"""Generation time of the synthetic benchmark per scale (the issue asks: default <= 3 min on 2 cores).

Run: `.venv/bin/python benchmarks/bench_synth.py [tiny small default] [workers=N]`; prints one line per
scale (seconds, videos, frames, MB) and writes nothing outside a temporary folder. The machine is
shared: note the load average printed beside the numbers when comparing runs.
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


def main(argv: list[str]) -> None:
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
