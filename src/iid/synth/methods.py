"""Manipulations: each makes fake XXX_YYY from target scene XXX and source scene YYY.

A fake keeps every pixel of the target's frames outside its blending alpha (background, pose,
motion, hair) and puts the manipulated face inside; the mechanics imitate the FF++ namesakes:

- Deepfakes: source's inner face, rendered at low resolution (autoencoder output), colour not
  matched, soft mask.
- FaceSwap: the source video's own face, affinely warped onto the target's landmarks, pasted with a
  hard hull mask (visible boundary), no colour correction.
- Face2Face: target identity kept; the source's eye and mouth expressions re-enacted in those regions.
- NeuralTextures: mouth region only, re-rendered from a coarse neural texture (grid artefacts).
- FaceShifter: source's inner face at full resolution, colour matched, wide smooth blend.

Celeb-DF gets `celeb_synthesis` (improved swap: colour transfer, elliptic mask, temporal flicker,
full resolution) and DFDC `dfdc_morph` / `dfdc_gan`: none of them is one of the five above.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from iid.synth.geometry import apply
from iid.synth.render import HeadBase, draw_head_base
from iid.synth.scene import Rendered, Scene, render_scene

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
FFPP_MASKED = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")  # FF++ ships masks for these
CELEBDF_METHOD = "celeb_synthesis"
DFDC_METHODS = ("dfdc_morph", "dfdc_gan")


@dataclass
class Fake:
    frames: np.ndarray  # uint8 (T, S, S, 3)
    landmarks: np.ndarray  # float32 (T, 68, 2) of the face shown in the fake
    mask: np.ndarray  # bool (T, S, S): where the fake may differ from the target's frames


@dataclass
class Pair:
    """What a manipulation works from: both scenes, their rendered originals, a head cache, an rng."""

    target: Scene
    target_video: Rendered
    source: Scene
    source_video: Rendered | None  # rendered on demand when None (only FaceSwap needs its pixels)
    rng: np.random.Generator
    heads: dict  # per-job cache: identity -> HeadBase, and shared renders

    def head(self, ident) -> HeadBase:
        if ident not in self.heads:
            self.heads[ident] = draw_head_base(ident, self.target.size)
        return self.heads[ident]

    def source_rendered(self) -> Rendered:
        if self.source_video is None:
            self.source_video = render_scene(self.source, self.head(self.source.ident))
        return self.source_video

    def swapped(self) -> Rendered:
        """Target scene with the source's inner face (target outline, hair, pose, light).

        Cached in `heads` (shared by a job's pairs): Deepfakes and FaceShifter start from the same render.
        """
        mixed = self.target.ident.with_inner_face_of(self.source.ident)
        key = ("swapped", mixed, id(self.target))
        if key not in self.heads:
            self.heads[key] = render_scene(self.target, self.head(mixed))
        return self.heads[key]


# ---------- masks and blending ----------


def _k(size: int) -> float:
    return size / 256.0


def face_polygon(lm: np.ndarray, size: int) -> np.ndarray:
    """Convex hull of jaw and brows (brows raised a little): the region face swaps replace."""
    brows = lm[17:27] - [0, 8 * _k(size)]
    return cv2.convexHull(np.concatenate([lm[0:17], brows]).astype(np.float32)).reshape(-1, 2)


def region_mask(lms: np.ndarray, size: int, polygon: Callable[[np.ndarray], np.ndarray], grow: float = 0.0) -> np.ndarray:
    """(T, S, S) float32 0/1 filled polygons per frame, grown (+) or shrunk (-) by `grow` px."""
    out = np.zeros((len(lms), size, size), np.float32)
    for t, lm in enumerate(lms):
        cv2.fillPoly(out[t], [np.round(polygon(lm) * 16).astype(np.int32)], 1.0, cv2.LINE_8, 4)
        r = int(round(abs(grow)))
        if r:
            ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
            out[t] = cv2.dilate(out[t], ker) if grow > 0 else cv2.erode(out[t], ker)
    return out


def soften(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each frame's mask; alpha below 1/255 is cut to exactly 0 so 'outside' is exact.

    Blurs only the bounding box of the masks grown by the kernel radius (faces are a fraction of a frame).
    """
    out = mask.copy()
    ys, xs = np.nonzero(mask.max(0) > 0)
    if sigma <= 0 or len(ys) == 0:
        return out
    r = int(np.ceil(4 * sigma)) + 1
    S_y, S_x = mask.shape[1:]
    box = (slice(max(ys.min() - r, 0), min(ys.max() + r + 1, S_y)), slice(max(xs.min() - r, 0), min(xs.max() + r + 1, S_x)))
    for t in range(len(mask)):
        out[t][box] = cv2.GaussianBlur(mask[t][box], (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    out[out < 1 / 255] = 0
    return out


def blend(target: np.ndarray, face: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """target + alpha * (face - target); exactly the target where alpha == 0.

    Works inside the bounding box of alpha > 0 over all frames (faces cover a fraction of a frame).
    """
    out = target.copy()
    ys, xs = np.nonzero(alpha.max(0) > 0)
    if len(ys) == 0:
        return out
    box = (slice(None), slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    t = target[box].astype(np.float32)
    a = alpha[box][..., None]
    out[box] = np.clip(np.rint(t + a * (face[box].astype(np.float32) - t)), 0, 255).astype(np.uint8)
    return out


def _finish(p: Pair, face: np.ndarray, alpha: np.ndarray, lms: np.ndarray) -> Fake:
    frames = blend(p.target_video.frames, face, alpha)
    return Fake(frames, lms.astype(np.float32), alpha > 0)


def _color_transfer(face: np.ndarray, target: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Match mean and std per channel of `face` to `target` inside `region` (per frame)."""
    out = face.astype(np.float32)
    for t in range(len(face)):
        m = (region[t] > 0.5).astype(np.uint8)
        if m.sum() < 16:
            continue
        fm, fs = cv2.meanStdDev(face[t], mask=m)
        gm, gs = cv2.meanStdDev(target[t], mask=m)
        scale = (gs / (fs + 1e-3)).reshape(3).astype(np.float32)
        out[t] = (out[t] - fm.reshape(3).astype(np.float32)) * scale + gm.reshape(3).astype(np.float32)
    return np.clip(out, 0, 255)


def _resample(frames: np.ndarray, factor: float) -> np.ndarray:
    """Down- then up-sample each frame (loss of detail of a low-resolution generator)."""
    T, S = frames.shape[:2]
    small = int(round(S * factor))
    return np.stack([cv2.resize(cv2.resize(f, (small, small), interpolation=cv2.INTER_AREA), (S, S), interpolation=cv2.INTER_LINEAR) for f in frames])


# ---------- FF++ methods ----------


def deepfakes(p: Pair) -> Fake:
    S = p.target.size
    r = p.swapped()
    face = _resample(r.frames, 0.38).astype(np.float32)  # ~150 px face -> ~64 px decoder output
    face *= p.rng.uniform(0.9, 1.1, 3).astype(np.float32)  # no colour correction: a per-video cast
    hard = region_mask(r.landmarks, S, lambda lm: face_polygon(lm, S), grow=-7 * _k(S))
    return _finish(p, np.clip(face, 0, 255), soften(hard, 5 * _k(S)), r.landmarks)


def faceswap(p: Pair) -> Fake:
    S = p.target.size
    src, tgt = p.source_rendered(), p.target_video
    face = np.empty_like(tgt.frames)
    lms = tgt.landmarks.copy()
    for t in range(p.target.frames):
        m, _ = cv2.estimateAffine2D(src.landmarks[t, 17:], tgt.landmarks[t, 17:], method=cv2.LMEDS)
        m = m if m is not None else np.eye(2, 3, dtype=np.float32)
        face[t] = cv2.warpAffine(src.frames[t], m, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        lms[t, 17:] = apply(m.astype(np.float32), src.landmarks[t, 17:])
    hard = region_mask(tgt.landmarks, S, lambda lm: face_polygon(lm, S), grow=-3 * _k(S))
    return _finish(p, face, soften(hard, 1.2 * _k(S)), lms)


def _eyes_and_mouth(lm: np.ndarray, size: int) -> list[np.ndarray]:
    k = _k(size)
    eyes = cv2.convexHull(np.concatenate([lm[17:27] - [0, 4 * k], lm[36:48] + [0, 4 * k]]).astype(np.float32)).reshape(-1, 2)
    mouth = cv2.convexHull(np.concatenate([lm[48:68], lm[31:36], lm[6:11] - [0, 6 * k]]).astype(np.float32)).reshape(-1, 2)
    return [eyes, mouth]


def _region_union(lms_a: np.ndarray, lms_b: np.ndarray, size: int, polys, grow: float) -> np.ndarray:
    out = np.zeros((len(lms_a), size, size), np.float32)
    for t in range(len(lms_a)):
        for lm in (lms_a[t], lms_b[t]):
            for poly in polys(lm, size):
                cv2.fillPoly(out[t], [np.round(poly * 16).astype(np.int32)], 1.0, cv2.LINE_8, 4)
    r = int(round(grow))
    if r:
        ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        out = np.stack([cv2.dilate(m, ker) for m in out])
    return out


def face2face(p: Pair) -> Fake:
    S = p.target.size
    r = render_scene(p.target, p.head(p.target.ident), p.source.motion)  # target face, source expressions
    # the model-based re-rendering is smoother than the camera image and slightly off in shading
    face = np.stack([cv2.GaussianBlur(f, (0, 0), 1.1 * _k(S)) for f in r.frames]).astype(np.float32) * 1.04
    hard = _region_union(r.landmarks, p.target_video.landmarks, S, _eyes_and_mouth, 4 * _k(S))
    return _finish(p, np.clip(face, 0, 255), soften(hard, 3 * _k(S)), r.landmarks)


def _mouth_only(lm: np.ndarray, size: int) -> list[np.ndarray]:
    k = _k(size)
    pts = np.concatenate([lm[48:68], lm[31:36] + [0, 2 * k], lm[7:10] - [0, 4 * k]])
    return [cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)]


def neural_textures(p: Pair) -> Fake:
    S = p.target.size
    mo = replace(p.target.motion, mouth=p.source.motion.mouth, smile=p.source.motion.smile)
    r = render_scene(p.target, p.head(p.target.ident), mo)
    # a coarse learned texture sampled through a UV grid: half resolution, quantised, grid pattern
    face = _resample(r.frames, 0.5).astype(np.float32)
    face = np.round(face / 10) * 10
    yy, xx = np.mgrid[0:S, 0:S]
    grid = (np.sin(xx * np.pi / 2) * np.sin(yy * np.pi / 2)).astype(np.float32)[None, ..., None]
    face += 7 * grid
    hard = _region_union(r.landmarks, p.target_video.landmarks, S, _mouth_only, 5 * _k(S))
    return _finish(p, np.clip(face, 0, 255), soften(hard, 2.5 * _k(S)), r.landmarks)


def faceshifter(p: Pair) -> Fake:
    S = p.target.size
    r = p.swapped()
    hard = region_mask(r.landmarks, S, lambda lm: face_polygon(lm, S), grow=-6 * _k(S))
    face = _color_transfer(r.frames, p.target_video.frames, hard)
    face = np.stack([cv2.GaussianBlur(f, (0, 0), 0.6) for f in face.astype(np.float32)])
    return _finish(p, face, soften(hard, 7 * _k(S)), r.landmarks)


# ---------- the cross-dataset methods (none of them is one of the five) ----------


def celeb_synthesis(p: Pair) -> Fake:
    S = p.target.size
    r = p.swapped()
    T = p.target.frames
    jitter = p.rng.normal(0, 1.5 * _k(S), (T, 2)).astype(np.float32)  # unstable per-frame mask: flicker

    hard = np.zeros((T, S, S), np.float32)
    for t, lm in enumerate(r.landmarks):
        pts = np.concatenate([lm[0:17], lm[17:27] - [0, 6 * _k(S)]]).astype(np.float32)
        (cx, cy), (w, h), ang = cv2.fitEllipse(pts)
        c = (int(round((cx + jitter[t, 0]) * 16)), int(round((cy + jitter[t, 1]) * 16)))
        cv2.ellipse(hard[t], c, (int(w * 0.43 * 16), int(h * 0.45 * 16)), ang, 0, 360, 1.0, -1, cv2.LINE_8, 4)
    # a synthesis at full resolution (Celeb-DF v2's improved swaps): colour transferred, smooth blend;
    # what is left is the temporal instability of the mask and of the colour
    face = _color_transfer(r.frames, p.target_video.frames, hard)
    face *= (1 + p.rng.normal(0, 0.02, (T, 1, 1, 3))).astype(np.float32)
    return _finish(p, np.clip(face, 0, 255), soften(hard, 4 * _k(S)), r.landmarks)


def dfdc_morph(p: Pair) -> Fake:
    S = p.target.size
    morph = p.target.ident.with_inner_face_of(p.target.ident.mixed(p.source.ident, 0.65))
    r = render_scene(p.target, p.head(morph))
    face = _resample(r.frames, 0.55).astype(np.float32)
    face += p.rng.normal(0, 5, face.shape).astype(np.float32)  # generator noise
    hard = region_mask(r.landmarks, S, lambda lm: face_polygon(lm, S), grow=-4 * _k(S))
    return _finish(p, np.clip(face, 0, 255), soften(hard, 3 * _k(S)), r.landmarks)


def dfdc_gan(p: Pair) -> Fake:
    S = p.target.size
    r = p.swapped()
    face = r.frames.astype(np.float32)
    yy, xx = np.mgrid[0:S, 0:S]
    checker = (((xx // 2) + (yy // 2)) % 2 * 2 - 1).astype(np.float32)[None, ..., None]  # deconvolution checkerboard
    face *= 1 + 0.05 * checker
    face = face[..., [0, 2, 1]] * 0.25 + face * 0.75  # hue drift of an unmatched generator
    hard = region_mask(r.landmarks, S, lambda lm: face_polygon(lm, S), grow=-2 * _k(S))
    return _finish(p, np.clip(face, 0, 255), soften(hard, 2 * _k(S)), r.landmarks)


METHODS: dict[str, Callable[[Pair], Fake]] = {
    "Deepfakes": deepfakes,
    "Face2Face": face2face,
    "FaceSwap": faceswap,
    "NeuralTextures": neural_textures,
    "FaceShifter": faceshifter,
    CELEBDF_METHOD: celeb_synthesis,
    "dfdc_morph": dfdc_morph,
    "dfdc_gan": dfdc_gan,
}
