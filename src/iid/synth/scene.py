"""A video scene (identity, motion, background) and rendering it frame by frame, without encoding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from iid.synth.geometry import apply
from iid.synth.identity import Identity
from iid.synth.motion import Motion, sample_motion
from iid.synth.render import HeadBase, compose, draw_expression, draw_head_base, make_background


@dataclass
class Scene:
    """One recorded video: who, how they move, and where."""

    ident: Identity
    motion: Motion
    background: np.ndarray  # uint8 (S, S, 3)

    @property
    def size(self) -> int:
        return self.background.shape[0]

    @property
    def frames(self) -> int:
        return self.motion.frames


@dataclass
class Rendered:
    """Frames before encoding and what was drawn in them."""

    frames: np.ndarray  # uint8 (T, S, S, 3) RGB
    landmarks: np.ndarray  # float32 (T, 68, 2) frame pixels (x, y)
    alpha: np.ndarray  # float32 (T, S, S) head coverage in [0, 1]


def make_scene(ident: Identity, rng: np.random.Generator, frames: int, size: int, lively: float = 1.0) -> Scene:
    motion = sample_motion(rng, frames, size, lively=lively)
    # shoulders sit under the average head position
    m = motion.pose(0, size)
    cx = float(np.mean(motion.tx)) + size / 2
    cy = float(np.mean(motion.ty)) + size * 0.9 * float(m[0, 0] ** 2 + m[0, 1] ** 2) ** 0.5
    return Scene(ident, motion, make_background(rng, size, cx, cy))


def render_scene(
    scene: Scene, base: HeadBase | None = None, expressions: Motion | None = None, light: bool = True
) -> Rendered:
    """Render `scene` with the head `base` (default: the scene's own identity) showing the
    expressions of `expressions` (default: the scene's own motion) at the scene's poses and lights."""
    size, T = scene.size, scene.frames
    base = base or draw_head_base(scene.ident, size)
    expr_src = expressions or scene.motion
    mo = scene.motion
    frames = np.empty((T, size, size, 3), np.uint8)
    lms = np.empty((T, 68, 2), np.float32)
    alphas = np.empty((T, size, size), np.float32)
    for t in range(T):
        canon, lm = draw_expression(base, expr_src.expression(t))
        m = mo.pose(t, size)
        lit = (float(mo.gain[t]), float(mo.light_strength[t]), float(mo.light_angle[t])) if light else None
        frames[t], alphas[t] = compose(scene.background, base, canon, m, lit)
        lms[t] = apply(m, lm)
    return Rendered(frames, lms, alphas)
