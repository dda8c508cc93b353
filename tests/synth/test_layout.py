"""The three data sets are written exactly in the real layouts (names, splits, lists, sidecars)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import av
import numpy as np

from iid.synth import SCALES
from iid.synth.methods import FFPP_MASKED, FFPP_METHODS

TINY = SCALES["tiny"]


def _stems(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.mp4")}


def test_ffpp_layout_and_splits(synthetic_root: Path) -> None:
    ff = synthetic_root / "FaceForensics++"
    originals = _stems(ff / "original_sequences/youtube/c23/videos")
    assert len(originals) == TINY.ffpp_originals
    assert all(re.fullmatch(r"\d{3}", v) for v in originals)

    splits = {s: json.loads((ff / "splits" / f"{s}.json").read_text()) for s in ("train", "val", "test")}
    members = {s: [v for pair in pairs for v in pair] for s, pairs in splits.items()}
    for pairs in splits.values():
        assert all(isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p) for p in pairs)
    every = [v for vs in members.values() for v in vs]
    assert sorted(every) == sorted(originals), "each original in exactly one split"
    assert all(members[s] for s in splits), "no split is empty"

    expected_fakes = {f"{a}_{b}" for pairs in splits.values() for x, y in pairs for a, b in ((x, y), (y, x))}
    for method in FFPP_METHODS:
        assert _stems(ff / "manipulated_sequences" / method / "c23/videos") == expected_fakes, method
        masks = ff / "manipulated_sequences" / method / "masks/videos"
        if method in FFPP_MASKED:
            assert _stems(masks) == expected_fakes, method
        else:
            assert not masks.exists(), "FF++ ships no FaceShifter masks"


def test_celebdf_layout_and_test_list(synthetic_root: Path) -> None:
    cd = synthetic_root / "Celeb-DF-v2"
    real = _stems(cd / "Celeb-real")
    fake = _stems(cd / "Celeb-synthesis")
    youtube = _stems(cd / "YouTube-real")
    assert all(re.fullmatch(r"id\d+_\d{4}", v) for v in real)
    assert all(re.fullmatch(r"\d{5}", v) for v in youtube) and len(youtube) == TINY.youtube
    ids = {v.split("_")[0] for v in real}
    assert len(ids) == TINY.celeb_ids and len(real) == TINY.celeb_ids * TINY.celeb_videos  # several videos each
    for v in fake:
        m = re.fullmatch(r"(id\d+)_(id\d+)_(\d{4})", v)
        assert m and m.group(1) != m.group(2) and f"{m.group(1)}_{m.group(3)}" in real

    lines = (cd / "List_of_testing_videos.txt").read_text().splitlines()
    assert lines
    listed = set()
    for line in lines:
        label, rel = line.split(" ")
        folder, name = rel.split("/")
        assert (label, folder) in {("1", "Celeb-real"), ("1", "YouTube-real"), ("0", "Celeb-synthesis")}, line
        assert (cd / rel).is_file()
        listed.add(rel)
    assert len(listed) == len(lines)
    all_videos = {str(p.relative_to(cd)) for p in cd.glob("*/*.mp4")}
    assert listed < all_videos, "some videos are left for training, like the real data set"
    assert {r.split("/")[0] for r in listed} == {"Celeb-real", "YouTube-real", "Celeb-synthesis"}


def test_dfdc_layout_and_labels(synthetic_root: Path) -> None:
    dd = synthetic_root / "DFDC"
    with open(dd / "labels.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["filename", "label"]
    names = {r[0]: int(r[1]) for r in rows[1:]}
    assert set(names.values()) == {0, 1}
    assert sum(names.values()) == TINY.dfdc_real and len(names) == 2 * TINY.dfdc_real
    assert all(re.fullmatch(r"[a-z]{10}\.mp4", n) for n in names)
    assert {p.name for p in (dd / "videos").glob("*.mp4")} == set(names)


def test_every_video_is_h264_with_a_landmark_sidecar(synthetic_root: Path) -> None:
    videos = [p for p in synthetic_root.rglob("*.mp4") if "masks" not in p.parts]
    assert len(videos) > 50
    for p in videos[::7] + videos[-3:]:
        lm = np.load(p.with_name(p.stem + ".landmarks.npy"))
        assert lm.dtype == np.float32 and lm.shape == (TINY.frames, 68, 2), p
        with av.open(str(p)) as c:
            s = c.streams.video[0]
            assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
            n = sum(1 for _ in c.decode(s))
        assert n == TINY.frames, p
        assert (lm > 0).all() and (lm < TINY.size).all(), "the face stays in the frame"
    assert not list(synthetic_root.rglob("*.part")), "no half-written files"


def test_landmarks_follow_ibug_order(synthetic_root: Path) -> None:
    lm = np.load(synthetic_root / "FaceForensics++/original_sequences/youtube/c23/videos/000.landmarks.npy")[0]
    # undo the in-plane rotation with the eye line, then check the anatomy top to bottom and left to right
    le, re_ = lm[36:42].mean(0), lm[42:48].mean(0)
    a = np.arctan2(re_[1] - le[1], re_[0] - le[0])
    rot = np.array([[np.cos(-a), -np.sin(-a)], [np.sin(-a), np.cos(-a)]])
    p = (lm - lm.mean(0)) @ rot.T
    y = lambda s: p[s, 1].mean()  # noqa: E731
    assert y(slice(17, 27)) < y(slice(36, 48)) < y(slice(31, 36)) < y(slice(48, 68)) < p[8, 1]
    assert p[0, 0] < p[8, 0] < p[16, 0] and p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0] and p[48, 0] < p[54, 0]
    assert abs(p[8, 0]) < 10 and p[30, 1] > p[27, 1]


def test_dfdc_is_compressed_harder_than_ffpp(synthetic_root: Path) -> None:
    def bits_per_pixel(paths: list[Path]) -> float:
        return sum(p.stat().st_size for p in paths) * 8 / (len(paths) * TINY.frames * TINY.size**2)

    ff = bits_per_pixel(list((synthetic_root / "FaceForensics++/original_sequences/youtube/c23/videos").glob("*.mp4")))
    dfdc = bits_per_pixel(list((synthetic_root / "DFDC/videos").glob("*.mp4")))
    assert dfdc < ff
