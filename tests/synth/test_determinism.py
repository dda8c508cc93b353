"""The same seed gives the same landmarks and the same frames before encoding; another seed does not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from iid.synth import SCALES
from iid.synth.layouts import celeb_test_list, dfdc_names, ffpp_frames, ffpp_pairs
from iid.synth.video import read_video

TINY = SCALES["tiny"]


def _flat(videos: dict) -> dict[str, tuple[np.ndarray, ...]]:
    out = {}
    for group, items in videos.items():
        for name, v in items.items():
            out[f"{group}/{name}"] = (v.frames, v.landmarks, v.mask if hasattr(v, "mask") else v.alpha)
    return out


def test_same_seed_same_frames_and_landmarks() -> None:
    a, b = _flat(ffpp_frames(0, TINY, ("000", "001"))), _flat(ffpp_frames(0, TINY, ("000", "001")))
    assert a.keys() == b.keys() and len(a) == 2 + 2 * 5
    for k in a:
        for x, y in zip(a[k], b[k]):
            np.testing.assert_array_equal(x, y, err_msg=k)


def test_other_seed_other_benchmark() -> None:
    a, b = _flat(ffpp_frames(0, TINY, ("000", "001"))), _flat(ffpp_frames(1, TINY, ("000", "001")))
    for k in a:
        assert not np.array_equal(a[k][0], b[k][0]), k
        assert not np.allclose(a[k][1], b[k][1]), k
    assert ffpp_pairs(0, TINY) != ffpp_pairs(1, TINY) or dfdc_names(0, TINY) != dfdc_names(1, TINY)
    assert celeb_test_list(0, TINY) == celeb_test_list(0, TINY)
    assert dfdc_names(0, TINY) == dfdc_names(0, TINY) and dfdc_names(0, TINY) != dfdc_names(1, TINY)


def test_written_files_are_the_rendered_frames(synthetic_root: Path) -> None:
    ff = synthetic_root / "FaceForensics++"
    pair = json.loads((ff / "splits/test.json").read_text())[0]
    videos = ffpp_frames(0, TINY, tuple(pair))
    for name, fake in videos["Deepfakes"].items():
        p = ff / "manipulated_sequences/Deepfakes/c23/videos" / f"{name}.mp4"
        np.testing.assert_array_equal(np.load(p.with_name(p.stem + ".landmarks.npy")), fake.landmarks)
        decoded = read_video(p).astype(np.float32)
        # H.264 at CRF 23 plus the decoder's YUV->RGB convention: a couple of levels on average
        assert np.abs(decoded - fake.frames).mean() < 4, "only compression noise between them"
    real = videos["real"][pair[0]]
    p = ff / "original_sequences/youtube/c23/videos" / f"{pair[0]}.mp4"
    np.testing.assert_array_equal(np.load(p.with_name(p.stem + ".landmarks.npy")), real.landmarks)
