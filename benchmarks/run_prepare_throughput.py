"""Prepare throughput: videos/s and frames/s of `iid.data.preparation` on a synthetic FF++ (oracle landmarks) and
on a 640x480 video of real photographs (dlib, when installed). Run: .venv/bin/python benchmarks/run_prepare_throughput.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from iid.data.preparation import prepare_dataset


def photo_dfdc(root: Path, n_videos: int = 4, n_frames: int = 64) -> None:
    import matplotlib
    import skimage

    from iid.synth.video import write_video

    astro = cv2.imread(str(Path(skimage.__file__).parent / "data" / "astronaut.png"))[:, :, ::-1]
    grace = cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))[:, :, ::-1]
    rows = ["filename,label"]
    for v in range(n_videos):
        photo = astro if v % 2 else grace
        h, w = photo.shape[:2]
        photo = cv2.resize(photo, (round(w * 480 / h), 480))  # keep the aspect ratio, pad to 640x480
        img = np.zeros((480, 640, 3), np.uint8)
        x0 = (640 - photo.shape[1]) // 2
        img[:, x0 : x0 + photo.shape[1]] = photo
        frames = np.stack([np.roll(img, (i % 7, i % 11), axis=(0, 1)) for i in range(n_frames)])
        write_video(root / f"v{v}.mp4", frames, crf=18)
        rows.append(f"v{v}.mp4,0")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


def main() -> None:
    from iid.synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synth = generate(tmp / "synth", scale="tiny", seed=0)
        for workers in (1, 2):
            t = time.perf_counter()
            s = prepare_dataset("ffpp", synth / "FaceForensics++", tmp / f"s{workers}", frames=8,
                                landmarks="oracle", workers=workers, progress=False)  # fmt: skip
            dt = time.perf_counter() - t
            rows = sum(s["rows"].values())
            print(f"oracle, synthetic FF++, workers={workers}: {s['videos'] / dt:.1f} videos/s, {rows / dt:.0f} frames/s")
        try:
            import dlib  # noqa: F401
        except ImportError:
            print("dlib not installed: skipped the dlib measurement")
            return
        photo_dfdc(tmp / "dfdc")
        t = time.perf_counter()
        s = prepare_dataset("dfdc", tmp / "dfdc", tmp / "sd", frames=32, landmarks="dlib", workers=1, progress=False)
        dt = time.perf_counter() - t
        rows = sum(s["rows"].values())
        print(f"dlib, 640x480 photos, 32 of 64 frames, workers=1: {s['videos'] / dt:.2f} videos/s, {rows / dt:.1f} frames/s")


if __name__ == "__main__":
    main()
