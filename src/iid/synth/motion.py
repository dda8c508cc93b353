"""Per-frame head pose, expression and lighting of one video: smooth random trajectories."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iid.synth.geometry import Expression, pose_matrix


@dataclass(frozen=True)
class Motion:
    """Everything that changes over a video's T frames (arrays of length T)."""

    tx: np.ndarray  # translation px
    ty: np.ndarray
    scale: np.ndarray
    angle: np.ndarray  # in-plane rotation, radians
    eyes: np.ndarray  # openness 0..1 (blinks)
    mouth: np.ndarray  # opening 0..1 (talking)
    smile: np.ndarray
    gaze_x: np.ndarray
    gaze_y: np.ndarray
    gain: np.ndarray  # light: overall gain
    light_strength: np.ndarray  # light: directional ramp strength
    light_angle: np.ndarray  # light: ramp direction

    @property
    def frames(self) -> int:
        return len(self.tx)

    def expression(self, t: int) -> Expression:
        return Expression(
            float(self.eyes[t]), float(self.mouth[t]), float(self.smile[t]), float(self.gaze_x[t]), float(self.gaze_y[t])
        )

    def pose(self, t: int, size: int) -> np.ndarray:
        """(2, 3) canonical -> frame similarity of frame t."""
        return pose_matrix(float(self.tx[t]), float(self.ty[t]), float(self.scale[t]), float(self.angle[t]), size)


def _wave(rng: np.random.Generator, t: np.ndarray, amp: float, fps: float) -> np.ndarray:
    """Smooth random trajectory: sum of three sinusoids with random periods (1-6 s) and phases."""
    out = np.zeros_like(t)
    for _ in range(3):
        period = rng.uniform(1.0, 6.0) * fps
        out += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return amp * out / 2.0


def sample_motion(rng: np.random.Generator, frames: int, size: int, fps: float = 25.0, lively: float = 1.0) -> Motion:
    """Draw a video's motion; `lively` scales pose/lighting variation (DFDC uses more)."""
    t = np.arange(frames, dtype=np.float64)
    k = size / 256.0
    base_x, base_y = rng.uniform(-14, 14) * k, rng.uniform(-8, 10) * k
    tx = base_x + _wave(rng, t, 10 * k * lively, fps)
    ty = base_y + _wave(rng, t, 6 * k * lively, fps)
    scale = rng.uniform(0.92, 1.08) * (1 + _wave(rng, t, 0.05 * lively, fps))
    angle = rng.uniform(-0.12, 0.12) + _wave(rng, t, 0.1 * lively, fps)

    # blinks: ~every 2-5 s, each about 5 frames long (closed in the middle)
    eyes = np.ones(frames)
    pos = rng.uniform(0, 3) * fps
    while pos < frames:
        for d in range(-3, 4):
            i = int(pos) + d
            if 0 <= i < frames:
                eyes[i] = min(eyes[i], abs(d) / 3.0)
        pos += rng.uniform(1.2, 4.0) * fps
    # talking: mouth opening bursts; a fraction of frames near closed
    talk = np.clip(0.5 + _wave(rng, t * 3.0, 1.0, fps), 0, 1) * rng.uniform(0.5, 1.0)
    mouth = np.where(np.sin(t * rng.uniform(0.6, 1.4) + rng.uniform(0, 6)) > -0.2, talk, 0.0)
    smile = np.clip(rng.uniform(-0.2, 0.6) + _wave(rng, t, 0.4, fps), 0, 1)
    gaze_x = np.clip(_wave(rng, t, 0.8, fps), -1, 1)
    gaze_y = np.clip(_wave(rng, t, 0.5, fps), -1, 1)

    gain = rng.uniform(0.85, 1.1) * (1 + _wave(rng, t, 0.05 * lively, fps))
    strength = np.clip(rng.uniform(0.05, 0.3) + _wave(rng, t, 0.05, fps), 0, 0.45)
    light_angle = rng.uniform(0, 2 * np.pi) + _wave(rng, t, 0.4 * lively, fps)
    f = np.float32
    return Motion(
        tx.astype(f), ty.astype(f), scale.astype(f), angle.astype(f), eyes.astype(f), mouth.astype(f), smile.astype(f),
        gaze_x.astype(f), gaze_y.astype(f), gain.astype(f), strength.astype(f), light_angle.astype(f),
    )  # fmt: skip
