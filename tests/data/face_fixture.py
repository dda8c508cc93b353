"""Drawn faces for fixtures: a 68-point shape (alignment tests, oracle sidecars, DeepfakeBench landmark
files) and short videos of it with their oracle sidecars.

Imported by the data tests (`sys.path` insert: pytest runs in importlib mode).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from iid.synth.video import write_video


def procedural_face_68(center: tuple[float, float] = (112.0, 112.0), iod: float = 53.0) -> np.ndarray:
    """A plausible frontal 68-point iBUG shape (float32 (68, 2)): for fixtures and drawn test faces.

    Built from simple curves in units of the inter-ocular distance `iod`, eyes on y = center_y - 0.1 iod.
    """
    cx, cy = center
    u = iod
    pts: list[tuple[float, float]] = []
    for t in np.linspace(np.pi * 0.95, np.pi * 0.05, 17):  # jaw 0-16: lower half-ellipse, ear to ear
        pts.append((cx + 1.0 * u * np.cos(t), cy - 0.1 * u + 1.75 * u * np.sin(t)))
    for side in (-1, 1):  # brows 17-21 (image-left), 22-26
        xs = np.linspace(-0.85, -0.15, 5) if side < 0 else np.linspace(0.15, 0.85, 5)
        for x in xs:
            pts.append((cx + x * u, cy - 0.45 * u - 0.08 * u * np.cos((abs(x) - 0.5) * 3)))
    for k in range(4):  # nose bridge 27-30, tip at 30
        pts.append((cx, cy - 0.1 * u + k * 0.2 * u))
    for x in np.linspace(-0.25, 0.25, 5):  # nostrils 31-35
        pts.append((cx + x * u, cy + 0.58 * u - 0.05 * u * np.cos(x * 6)))
    for ex in (-0.5, 0.5):  # eyes 36-41, 42-47: hexagon around the eye centre
        for a in np.deg2rad([180, 120, 60, 0, -60, -120]):
            pts.append((cx + ex * u + 0.2 * u * np.cos(a), cy - 0.1 * u - 0.07 * u * np.sin(a)))
    my = cy + 0.95 * u
    for a in np.deg2rad(np.linspace(180, -150, 12)):  # outer lip 48-59, corners at 48 (180) and 54 (0)
        pts.append((cx + 0.42 * u * np.cos(a), my - 0.15 * u * np.sin(a)))
    for a in np.deg2rad(np.linspace(180, -135, 8)):  # inner lip 60-67
        pts.append((cx + 0.3 * u * np.cos(a), my - 0.05 * u * np.sin(a)))
    out = np.array(pts, dtype=np.float32)
    assert out.shape == (68, 2)
    return out


H = W = 96
T = 10  # frames per fixture video


def face_video(path: Path, n: int = T, level: int | None = None, step: int = 0) -> None:
    """A video whose frame i is flat grey `level + step*i` with a dark face disc, plus its oracle sidecar."""
    frames, lms = [], []
    for i in range(n):
        lm = procedural_face_68((48.0 + (i % 3), 40.0), 24.0)
        img = np.full((H, W, 3), (level if level is not None else 60) + step * i, np.uint8)
        cv2.circle(img, (48, 52), 10, (20, 20, 20), -1)
        frames.append(img)
        lms.append(lm)
    write_video(path, np.stack(frames), crf=18)
    np.save(path.with_name(path.stem + ".landmarks.npy"), np.stack(lms).astype(np.float32))
