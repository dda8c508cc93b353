"""Fakes keep the target's pixels outside the manipulated region, change them inside, and the five
methods leave different traces."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from iid.synth import SCALES
from iid.synth.layouts import ffpp_frames
from iid.synth.methods import FFPP_MASKED, FFPP_METHODS
from iid.synth.video import read_video

TINY = SCALES["tiny"]


@pytest.fixture(scope="module")
def pair_frames() -> list[dict]:
    """Frames before encoding of two FF++ pairs (tiny scale, seed 0)."""
    return [ffpp_frames(0, TINY, p) for p in (("000", "001"), ("002", "003"))]


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return np.stack([cv2.dilate(m.astype(np.uint8), k) for m in mask]).astype(bool)


def _erode(mask: np.ndarray, r: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return np.stack([cv2.erode(m.astype(np.uint8), k) for m in mask]).astype(bool)


@pytest.mark.parametrize("method", FFPP_MASKED)
def test_encoded_fake_equals_target_outside_its_mask(synthetic_root: Path, method: str) -> None:
    ff = synthetic_root / "FaceForensics++"
    fakes = sorted((ff / "manipulated_sequences" / method / "c23/videos").glob("*.mp4"))
    for p in fakes[:4]:
        fake = read_video(p).astype(np.float32)
        target = read_video(ff / "original_sequences/youtube/c23/videos" / f"{p.stem[:3]}.mp4").astype(np.float32)
        mask = read_video(ff / "manipulated_sequences" / method / "masks/videos" / p.name)[..., 0] > 127
        assert fake.shape == target.shape and mask.shape == fake.shape[:3]
        assert 0.02 < mask.mean() < 0.5, "a face-sized region"
        diff = np.abs(fake - target).mean(-1)
        outside = diff[~_dilate(mask, 4)].mean()  # compression smears a few pixels across the edge
        inside = diff[_erode(mask, 2)].mean()
        assert outside < 1.5, (p.name, outside)
        assert inside > 4 and inside > 5 * outside, (p.name, inside, outside)


@pytest.mark.parametrize("method", FFPP_METHODS)
def test_fake_is_exactly_the_target_outside_before_encoding(pair_frames: list[dict], method: str) -> None:
    for videos in pair_frames:
        for name, fake in videos[method].items():
            target = videos["real"][name[:3]]
            same = (fake.frames == target.frames).all(-1)
            assert same[~fake.mask].all(), name
            assert (~same[fake.mask]).mean() > 0.3, "most of the manipulated region changes"
            assert fake.mask.any(axis=(1, 2)).all(), "every frame is manipulated"
            if method not in ("Face2Face", "NeuralTextures"):  # swaps keep the target's face outline
                np.testing.assert_allclose(fake.landmarks[:, :17], target.landmarks[:, :17], atol=1e-3)


def _gray(x: np.ndarray) -> np.ndarray:
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in x]).astype(np.float32)


def _method_stats(fake, target) -> np.ndarray:
    """Per-fake statistics of the manipulated region: area, colour cast, fine detail, change, seam."""
    core = _erode(fake.mask, 4)
    band = fake.mask & ~_erode(fake.mask, 5)
    diff = fake.frames.astype(np.float32) - target.frames
    g = _gray(fake.frames)
    fine = np.abs(g - np.stack([cv2.GaussianBlur(f, (0, 0), 1) for f in g]))[core].mean()
    coarse = np.abs(g - np.stack([cv2.GaussianBlur(f, (0, 0), 3) for f in g]))[core].mean()
    d = np.abs(diff).mean(-1)
    return np.array([
        fake.mask.mean(),  # how much of the face is replaced
        np.linalg.norm(diff[core].mean(0)),  # colour cast (none when colour-matched)
        fine / coarse,  # resolution of the pasted face
        d[_erode(fake.mask, 10)].mean(),  # how different the inside is
        d[band].mean() / d[_erode(fake.mask, 10)].mean(),  # seam: hard (FaceSwap) vs soft blend
    ])  # fmt: skip


def test_the_five_methods_leave_different_traces(pair_frames: list[dict]) -> None:
    stats = {
        m: np.stack([_method_stats(f, v["real"][n[:3]]) for v in pair_frames for n, f in v[m].items()])
        for m in FFPP_METHODS
    }
    for a, b in itertools.combinations(FFPP_METHODS, 2):
        # some statistic separates every fake of one method from every fake of the other
        separated = (stats[a].max(0) < stats[b].min(0)) | (stats[b].max(0) < stats[a].min(0))
        assert separated.any(), (a, b, stats[a].round(3), stats[b].round(3))
