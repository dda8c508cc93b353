"""Identities: a persistent face appearance drawn from a seed, many independent factors.

Every factor is drawn independently so that identities differ in many ways at once (shape, colour,
texture, hair, accessories); a network can therefore learn an identity from any of several cues, which
is what makes implicit identity leakage possible on this benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# Canonical face frame: the face is drawn on an S x S canvas (S = frame size) centred at (cx, cy).
HAIR_STYLES = ("bald", "short", "fringe", "side", "long", "bun")

# Broad palettes; each identity jitters around a palette entry, so tones are continuous, not 6 classes.
_SKIN = np.array(
    [[250, 220, 195], [236, 192, 160], [214, 160, 120], [180, 125, 90], [140, 95, 65], [100, 68, 48]],
    np.float32,
)
_HAIR = np.array(
    [[25, 20, 18], [70, 45, 30], [120, 80, 45], [200, 160, 90], [160, 60, 30], [150, 150, 150], [235, 230, 220]],
    np.float32,
)
_IRIS = np.array([[60, 40, 25], [110, 70, 35], [70, 110, 60], [60, 100, 160], [120, 130, 140]], np.float32)


@dataclass(frozen=True)
class Identity:
    """Appearance factors of one person (colours RGB 0..255, lengths in canonical pixels)."""

    seed: int  # drives the identity's own texture noise (freckles, blotches, hair streaks)
    # head and jaw shape
    face_w: float  # half width of the face at cheek level
    face_h: float  # eye line to chin
    chin: float  # 0 round .. 1 pointed
    jaw_square: float  # 0 soft .. 1 square
    forehead: float  # brow line to hairline / top of head
    # skin
    skin: tuple[float, float, float]
    skin_texture: float  # amplitude of low-frequency blotches
    freckles: float  # density of freckles
    blush: float  # cheek redness
    moles: int
    # eyes
    eye_dx: float  # half distance between eye centres
    eye_y: float  # eye line offset from the canonical one
    eye_w: float  # half width of an eye
    eye_open: float  # half height of an open eye
    eye_tilt: float  # outer corner up (+) or down (-), radians
    iris: tuple[float, float, float]
    iris_r: float
    lash: int  # upper-lid line thickness
    # brows
    brow_thick: float
    brow_arch: float
    brow_gap: float  # brow height above the eye
    brow_tilt: float
    # nose
    nose_len: float
    nose_w: float
    # mouth
    mouth_w: float
    mouth_y: float  # nose tip to mouth distance
    lip_upper: float
    lip_lower: float
    lip: tuple[float, float, float]
    # hair and extras
    hair: tuple[float, float, float]
    hair_style: str
    hair_volume: float
    beard: float  # 0 none .. 1 full beard (alpha)
    glasses: int  # 0 none, 1 round, 2 rectangular
    glasses_color: tuple[float, float, float]
    ear: float  # ear size

    def with_inner_face_of(self, source: Identity) -> Identity:
        """Face swap identity: this head's outline and hair with `source`'s inner face.

        Like a real swap, the face outline (jaw, forehead, ears, hair) stays the target's and
        everything inside (skin, eyes, brows, nose, mouth, beard, glasses) comes from the source.
        """
        keep = {
            "face_w",
            "face_h",
            "chin",
            "jaw_square",
            "forehead",
            "hair",
            "hair_style",
            "hair_volume",
            "ear",
        }
        fields = {k: getattr(source, k) for k in self.__dataclass_fields__ if k not in keep}
        return replace(self, **fields)

    def mixed(self, other: Identity, t: float) -> Identity:
        """Morph between two identities: numeric factors interpolated, discrete ones from the nearer."""
        near = self if t < 0.5 else other
        out = {}
        for k in self.__dataclass_fields__:
            a, b = getattr(self, k), getattr(other, k)
            if isinstance(a, float):
                out[k] = float(a + (b - a) * t)
            elif isinstance(a, tuple):
                out[k] = tuple(float(x + (y - x) * t) for x, y in zip(a, b))
            else:
                out[k] = getattr(near, k)
        return Identity(**out)


def _color(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> tuple[float, float, float]:
    base = palette[rng.integers(len(palette))]
    c = np.clip(base * rng.uniform(0.9, 1.1) + rng.normal(0, jitter, 3), 0, 255)
    return tuple(float(v) for v in c)


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw one identity; every factor independent of the others."""
    u = rng.uniform
    style = HAIR_STYLES[rng.integers(len(HAIR_STYLES))]
    return Identity(
        seed=int(rng.integers(2**31)),
        face_w=u(56, 72),
        face_h=u(78, 100),
        chin=u(0.0, 1.0),
        jaw_square=u(0.0, 1.0),
        forehead=u(38, 56),
        skin=_color(rng, _SKIN, 8),
        skin_texture=u(0.0, 0.12),
        freckles=float(rng.choice([0.0, 0.0, u(0.2, 1.0)])),
        blush=u(0.0, 0.35),
        moles=int(rng.integers(0, 4)),
        eye_dx=u(24, 34),
        eye_y=u(-6, 6),
        eye_w=u(11, 16),
        eye_open=u(4.5, 8.0),
        eye_tilt=u(-0.18, 0.18),
        iris=_color(rng, _IRIS, 12),
        iris_r=u(4.0, 6.0),
        lash=int(rng.integers(1, 4)),
        brow_thick=u(2.5, 7.0),
        brow_arch=u(0.0, 7.0),
        brow_gap=u(10, 20),
        brow_tilt=u(-0.2, 0.2),
        nose_len=u(26, 40),
        nose_w=u(10, 19),
        mouth_w=u(17, 28),
        mouth_y=u(14, 24),
        lip_upper=u(3.0, 7.0),
        lip_lower=u(3.5, 9.0),
        lip=_color(rng, np.array([[190, 90, 90], [160, 80, 80], [210, 120, 120], [130, 60, 60]], np.float32), 10),
        hair=_color(rng, _HAIR, 10),
        hair_style=style,
        hair_volume=u(4, 18),
        beard=float(rng.choice([0.0, 0.0, 0.0, u(0.35, 0.9)])),
        glasses=int(rng.choice([0, 0, 0, 0, 1, 2])),
        glasses_color=_color(rng, np.array([[20, 20, 20], [120, 70, 30], [180, 180, 190], [30, 30, 120]], np.float32), 10),
        ear=u(0.8, 1.25),
    )


def identity_from_seed(*seed: int) -> Identity:
    """The identity named by a tuple of integers (benchmark seed, data set code, index)."""
    return sample_identity(np.random.default_rng(np.random.SeedSequence(list(seed))))
