"""`generate` and `ensure`: the whole benchmark at one scale, written in parallel over videos."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from iid.errors import UserError
from iid.synth import layouts as L

VERSION = 1  # bump when the rendering changes, so `ensure` regenerates stale benchmarks
MARKER = ".iid_synth.json"

SCALES: dict[str, L.Spec] = {
    # tests: seconds
    "tiny": L.Spec(frames=8, size=256, ffpp_originals=8, celeb_ids=4, celeb_videos=3, youtube=2, dfdc_real=4),
    # the default training run
    "small": L.Spec(frames=16, size=256, ffpp_originals=40, celeb_ids=10, celeb_videos=3, youtube=6, dfdc_real=20),
    # the experiment suite's mini scale: test splits large enough for +-0.05 intervals on video AUC
    # (FF++ 100 real / 500 fake test videos, Celeb-DF ~170 / 160, DFDC 150 / 150), 16 frames a video
    "mini": L.Spec(frames=16, size=256, ffpp_originals=180, celeb_ids=80, celeb_videos=3, youtube=20, dfdc_real=150,
                   test_share=50 / 90, val_share=8 / 90),
    # enough for a ResNet-34 to overfit identities
    "default": L.Spec(frames=32, size=256, ffpp_originals=100, celeb_ids=20, celeb_videos=3, youtube=10, dfdc_real=50),
}
DATASETS = (L.FFPP, L.CELEBDF, L.DFDC)


def _jobs(out: Path, seed: int, spec: L.Spec) -> list[tuple[Callable, tuple]]:
    jobs: list[tuple[Callable, tuple]] = []
    for pairs in L.ffpp_pairs(seed, spec).values():
        jobs += [(L.ffpp_job, (out, seed, spec, tuple(p))) for p in pairs]
    jobs += [(L.celeb_job, (out, seed, spec, i)) for i in range(spec.celeb_ids)]
    jobs += [(L.youtube_job, (out, seed, spec, k)) for k in range(spec.youtube)]
    jobs += [(L.dfdc_job, (out, seed, spec, i)) for i in range(spec.dfdc_real)]
    return jobs


def _run(job: tuple[Callable, tuple]) -> None:
    fn, args = job
    fn(*args)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already


def read_marker(out: Path) -> dict | None:
    try:
        return json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return None


def check_args(scale: str, seed: int) -> L.Spec:
    if scale not in SCALES:
        raise UserError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    return SCALES[scale]


def generate(out: Path, scale: str = "default", seed: int = 0, workers: int | None = None) -> Path:
    """Write out/FaceForensics++, out/Celeb-DF-v2 and out/DFDC; returns `out`.

    The completion marker is written last, so a killed run is recognised and redone by `ensure`.
    Refuses to touch data set folders it did not write (a real FF++ copy, for instance).
    """
    spec = check_args(scale, seed)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"out={out} is a file; give a folder for the synthetic benchmark")
    if read_marker(out) is None and any((out / d).exists() for d in DATASETS):
        raise UserError(f"{out} already holds data sets not written by iid.synth; choose another out=")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"complete": False, "version": VERSION}))
    for d in DATASETS:
        shutil.rmtree(out / d, ignore_errors=True)

    t0 = time.perf_counter()
    jobs = _jobs(out, seed, spec)
    if workers is None:  # tiny: process start-up would cost more than it saves
        workers = 1 if scale == "tiny" else os.cpu_count() or 1
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        _init_worker()
        for job in jobs:
            _run(job)
    else:
        # forkserver: safe even when the caller has torch/OpenMP threads running
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["iid.synth.layouts"])
        with ctx.Pool(workers, initializer=_init_worker) as pool:
            for _ in pool.imap_unordered(_run, jobs, chunksize=1):
                pass
    L.write_ffpp_index(out, seed, spec)
    L.write_celeb_index(out, seed, spec)
    L.write_dfdc_index(out, seed, spec)
    marker = {"complete": True, "version": VERSION, "scale": scale, "seed": seed, "seconds": round(time.perf_counter() - t0, 2)}
    (out / MARKER).write_text(json.dumps(marker))
    return out


def is_complete(out: Path, scale: str, seed: int) -> bool:
    m = read_marker(Path(out))
    return bool(m and m.get("complete") and m.get("version") == VERSION and m.get("scale") == scale and m.get("seed") == seed)


def ensure(out: Path, scale: str = "default", seed: int = 0, workers: int | None = None) -> Path:
    """Generate unless `out` already holds a complete benchmark of this scale, seed and version."""
    check_args(scale, seed)
    if is_complete(Path(out), scale, seed):
        return Path(out)
    return generate(out, scale, seed, workers)
