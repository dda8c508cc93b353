"""Each analysis of iid.analyze on ~500 frames of the embedded benchmark, on the CPU.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_analyses.py [--data DIR] [--backbone resnet34] [--threads 2]

A ResNet-34 caddm checkpoint with random weights (speed does not depend on the weights) is written in
iid.train's format, and each analysis runs through the same runner as `python -m iid.analyze`, on
~500 frames of the synthetic FF++ (train split: 168 videos, 3 frames each), end to end: checkpoint
load, store reads, eval transform, forward passes, the analysis itself, figures and files. Printed:
wall seconds per analysis, frames, the load average before and after (the machine is shared).

The interaction costs grid^2 + 1 = 257 forward passes per frame, so 500 frames are ~128,500 passes:
it is timed on --interaction-frames frames and its 500-frame time extrapolated from the measured
passes per second (printed as such). `cpu_seconds` is the CPU time the process used (all its
threads): on a shared machine it says what the run costs where wall time says how long it waited;
on 2 idle cores the wall time is about cpu_seconds / 2 (or more where a step is single-threaded).
The visual analysis draws a few dozen faces; its per-frame path (forward, box decoding, NMS) is
timed on 500 frames directly.

--data: a folder holding synthetic/ (scale small) with its stores (IID_DATA of a training run);
default .benchmarks/data, generated and prepared on first use (minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def compose(overrides: list[str], name: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("iid.conf", version_base="1.3"):
        return hydra_compose(config_name=name, overrides=overrides)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=".benchmarks/data")
    ap.add_argument("--backbone", default="resnet34")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--interaction-frames", type=int, default=4)
    ap.add_argument("--only", default=None, help="comma-separated analyses")
    a = ap.parse_args()

    import torch

    from iid.analysis.runner import analyze
    from iid.engine.checkpoints import CONFIG_KEY
    from iid.engine.config import plain_config
    from iid.engine.data import ensure_data
    from iid.module import DetectorModule

    torch.set_num_threads(a.threads)
    data = [f"paths.data={Path(a.data).resolve()}", "prepare.progress=false"]
    ensure_data(plain_config(compose(data, "config")))
    work = Path(tempfile.mkdtemp(prefix="bench_analyses_"))
    cfg = plain_config(compose([f"backbone={a.backbone}", "logger=csv", *data], "config"))
    module = DetectorModule(cfg, pretrained=False)
    ckpt = work / "ckpt" / "best.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({CONFIG_KEY: module.config, "state_dict": module.state_dict()}, ckpt)

    # ~500 frames of the synthetic FF++ train split (168 videos x 3 frames = 504)
    common = [f"ckpt={ckpt}", f"out={work / 'out'}", "sets=[ffpp]", f"threads={a.threads}", *data]
    runs = {
        "probe": ["analysis.splits=[train]", "analysis.frames=3", "analysis.fakes=target"],
        "overlap": ["analysis.splits=[train]", "analysis.frames=3"],
        "tsne": ["analysis.splits=[train]", "analysis.frames=3", "analysis.identities=28", "analysis.per_identity=18"],
        "interaction": ["analysis.splits=[train]", "analysis.frames=1", f"analysis.max_videos={a.interaction_frames}"],
    }
    only = set(a.only.split(",")) if a.only else None
    print(f"{a.backbone}, {a.threads} threads, load average {os.getloadavg()[0]:.2f} at start")
    report = {}
    for name, extra in runs.items():
        if only and name not in only:
            continue
        load0 = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        doc = analyze(compose([f"analysis={name}", *common, *extra], "analyze"))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        per = next(iter(doc["results"].values()))["ffpp"]
        frames = per.get("frames") or per.get("train_frames", 0) + per.get("test_frames", 0)
        line = {"seconds": round(dt, 1), "cpu_seconds": round(cpu, 1), "frames": frames, "load": [round(load0, 2), round(os.getloadavg()[0], 2)]}
        if name == "interaction":
            passes = frames * (doc["protocol"]["units"] + 1) + 1
            line["forward_passes_per_s"] = round(passes / dt, 1)
            line["extrapolated_500_frames_s"] = round(500 * (doc["protocol"]["units"] + 1) / (passes / dt), 0)
        report[name] = line
        print(f"{name:12s} {json.dumps(line)}")
    if not only or "visual" in only:
        report["visual"] = bench_visual(ckpt, data, a.threads)
        print(f"{'visual':12s} {json.dumps(report['visual'])}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


def bench_visual(ckpt: Path, data: list[str], threads: int) -> dict:
    """Forward + box decoding + NMS of 504 frames (the visual analysis' per-face path)."""
    import torch

    from iid.analysis import visual
    from iid.analysis.common import data_context, load_models, select_frames
    from iid.engine.config import plain_config

    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    model = load_models([str(ckpt)], None, torch.device("cpu"))[0]
    ctx_data = data_context(plain_config(compose([f"ckpt={ckpt}", *data], "analyze")), model)
    fr = select_frames(ctx_data.stores("ffpp", ["train"]), "ffpp", True, frames_per_video=3)

    class Ctx:
        batch_size = 32

    panels = visual._predict(model, fr, "bench", visual.VisualSettings(score_threshold=0.0), Ctx())
    return {"seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(time.process_time() - c0, 1), "frames": len(panels),
            "load": [round(load0, 2), round(os.getloadavg()[0], 2)]}


if __name__ == "__main__":
    main()
