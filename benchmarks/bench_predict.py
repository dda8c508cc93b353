"""`python -m iid.predict` speed on a 640x480 video of real photographs with a ResNet-34 + ADM checkpoint
(random weights: speed does not depend on them), end to end: decode + detect + align + score.

Run: .venv/bin/python benchmarks/bench_predict.py [--frames 160] [--detect-sizes 640,480] [--workers 1]

Prints, per detection size: dlib's HOG detector alone on a 640x480 frame (frames/s), the model alone
(ResNet-34 + ADM, batch 16, on the threads the run gives it), and the whole run with frames=all:
frames/s from the first decoded frame to the last scored one (workers started) and for the whole call,
with each stage's time per frame (decode, detect, align in the worker; the model in the main
process). The worker and the model run in parallel, so the slower of the two sets the pace. Wall times grow
with the other jobs on a shared machine; CPU times per frame hardly do, so the script also prints the
rate two idle cores would allow: 1000 / max(worker CPU ms, model CPU ms / threads) per frame.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def photo_video(path: Path, n_frames: int) -> None:
    """640x480 H.264 (CRF 23) of the astronaut and Grace Hopper photographs, moving a little each frame."""
    import matplotlib
    import skimage

    from iid.synth.video import write_video

    astro = cv2.imread(str(Path(skimage.__file__).parent / "data" / "astronaut.png"))[:, :, ::-1]
    grace = cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))[:, :, ::-1]
    frames = []
    for i in range(n_frames):
        photo = grace if (i // 40) % 2 == 0 else astro  # a cut every 40 frames
        h, w = photo.shape[:2]
        photo = cv2.resize(photo, (round(w * 480 / h), 480))
        img = np.zeros((480, 640, 3), np.uint8)
        x0 = (640 - photo.shape[1]) // 2
        img[:, x0 : x0 + photo.shape[1]] = photo
        frames.append(np.roll(img, (i % 9 - 4, i % 13 - 6), axis=(0, 1)))
    write_video(path, np.stack(frames), crf=23)


def checkpoint(path: Path) -> None:
    import torch
    from hydra import compose, initialize_config_module

    from iid.engine.config import plain_config
    from iid.module import DetectorModule

    with initialize_config_module("iid.conf", version_base="1.3"):
        cfg = plain_config(compose("config", overrides=["backbone=resnet34", "model=caddm"]))
    module = DetectorModule(cfg, pretrained=False)
    torch.save({"state_dict": module.state_dict(), "iid_config": module.config}, path)


def detector_alone(video: Path, detect_size: int | None, n: int = 20) -> tuple[float, float]:
    """(frames/s, CPU ms per frame) of DlibFaces on the video's first n frames."""
    from iid.inference.faces import DlibFaces
    from iid.inference.media import VideoStream

    frames = [d.image for d, _ in zip(VideoStream(video, None), range(n))]
    det = DlibFaces(detect_size)
    det.all_faces(frames[0])
    t, c = time.perf_counter(), time.process_time()
    for f in frames:
        det.all_faces(f)
    return len(frames) / (time.perf_counter() - t), 1000 * (time.process_time() - c) / len(frames)


def model_alone(ckpt: Path, threads: int, batch: int = 16, reps: int = 3) -> tuple[float, float]:
    """(faces/s, CPU ms per face) of the Scorer (eval transform + frozen network + boxes) at `batch`."""
    import torch

    from iid.inference.scoring import Scorer

    torch.set_num_threads(threads)
    sc = Scorer(ckpt, jit=True)
    sc.module.channels_last = True
    sc.module.model.to(memory_format=torch.channels_last)
    canv = np.random.default_rng(0).integers(0, 255, (batch, 256, 256, 3), dtype=np.uint8)
    lm = np.zeros((batch, 68, 2), np.float32)
    sc.score(canv, lm)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(reps):
        sc.score(canv, lm)
    return reps * batch / (time.perf_counter() - t), 1000 * (time.process_time() - c) / (reps * batch)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=160)
    ap.add_argument("--detect-sizes", default="640,480")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="model threads (default: the cores the workers leave)")
    args = ap.parse_args()
    from iid.inference.run import predict

    cores = len(os.sched_getaffinity(0))
    threads = args.threads or max(1, cores - args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video, ckpt = tmp / "in" / "photos_640x480.mp4", tmp / "r34.ckpt"
        photo_video(video, args.frames)
        checkpoint(ckpt)
        print(f"{cores} cores; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        fps, cpu = model_alone(ckpt, threads)
        print(f"model alone (ResNet-34 + ADM, batch 16, {threads} thread(s), channels-last, frozen): "
              f"{fps:.1f} faces/s, {cpu:.1f} ms CPU per face")  # fmt: skip
        for ds in [int(x) if x != "null" else None for x in args.detect_sizes.split(",")]:
            fps, cpu = detector_alone(video, ds)
            print(f"detect_size={ds}: dlib HOG + landmarks alone on 640x480: {fps:.1f} frames/s, "
                  f"{cpu:.1f} ms CPU per frame")  # fmt: skip
            r = predict({"ckpt": str(ckpt), "input": str(video), "out": str(tmp / f"out{ds}"), "frames": "all",
                         "detect_size": ds, "workers": args.workers, "threads": threads, "batch_size": 16})  # fmt: skip
            tm = r["times"]
            n = tm["frames"]
            steady = (n - 1) / (tm["last_scored"] - tm["first_frame"])
            per = {
                k: 1000 * tm[k] / n for k in tm if k.split("_")[0] in ("decode", "detect", "align", "model")
            }
            worker_cpu = per["decode_cpu"] + per["detect_cpu"] + per["align_cpu"]
            print(f"detect_size={ds}: end to end {steady:.1f} frames/s steady ({n / r['total']:.1f} for the whole call, "
                  f"{r['total']:.1f} s with model load and worker start); faces found in "
                  f"{r['docs'][str(video)]['frames_scored']}/{n} frames")  # fmt: skip
            print(f"  per frame, wall: decode {per['decode']:.1f} ms, detect {per['detect']:.1f} ms, align "
                  f"{per['align']:.1f} ms (worker) | model {per['model']:.1f} ms (main)")  # fmt: skip
            # CPU time does not grow with other jobs' load: on idle cores the slower side sets the pace
            print(f"  per frame, CPU: decode {per['decode_cpu']:.1f} ms, detect {per['detect_cpu']:.1f} ms, align "
                  f"{per['align_cpu']:.1f} ms = {worker_cpu:.1f} ms (worker, {100 * per['detect_cpu'] / worker_cpu:.0f}% "
                  f"detection) | model {per['model_cpu']:.1f} ms on {threads} thread(s) (main, batches of "
                  f"{tm['faces'] / max(1, tm['batches']):.1f} on average) -> at most "
                  f"{1000 / max(worker_cpu, per['model_cpu'] / threads):.1f} frames/s on idle cores")  # fmt: skip
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
