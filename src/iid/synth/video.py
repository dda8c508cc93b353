"""Writing H.264 .mp4 files (PyAV, libx264, yuv420p) and their landmark sidecars."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

FPS = 25


def write_video(path: Path, frames: np.ndarray, crf: int = 23, fps: int = FPS, preset: str = "veryfast") -> None:
    """Encode uint8 RGB frames (T, H, W, 3) (H, W even) as H.264 at constant rate factor `crf`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    T, H, W, _ = frames.shape
    tmp = path.with_name(path.name + ".part")  # a killed write never leaves a plausible file
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        # one thread: generation already runs one process per core
        stream.options = {"crf": str(int(crf)), "preset": preset, "threads": "1"}
        for f in frames:
            # our own RGB->I420 conversion is faster than swscale's per-frame setup
            vf = av.VideoFrame.from_ndarray(cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
            container.mux(stream.encode(vf))
        container.mux(stream.encode())
    tmp.replace(path)


def write_mask_video(path: Path, masks: np.ndarray, fps: int = FPS) -> None:
    """Mask video like FF++'s: white where manipulated, black elsewhere, (T, H, W) bool/0-1."""
    m = (np.asarray(masks) > 0).astype(np.uint8) * 255
    write_video(path, np.repeat(m[..., None], 3, axis=3), crf=18, fps=fps, preset="ultrafast")  # flat content


def sidecar_path(video: Path) -> Path:
    """`<dir>/<stem>.landmarks.npy` beside the video."""
    return video.with_name(video.stem + ".landmarks.npy")


def write_landmarks(video: Path, landmarks: np.ndarray) -> None:
    """float32 (T, 68, 2) pixel (x, y), iBUG 300-W order, one row per decoded frame."""
    video.parent.mkdir(parents=True, exist_ok=True)
    np.save(sidecar_path(video), np.asarray(landmarks, np.float32))


def read_video(path: Path) -> np.ndarray:
    """Decode all frames as uint8 RGB (T, H, W, 3) with OpenCV (what the readers use)."""
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(out) if out else np.zeros((0, 0, 0, 3), np.uint8)
