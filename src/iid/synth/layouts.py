"""Writers of the three real layouts: FaceForensics++, Celeb-DF-v2 and the DFDC public test set.

Work is cut into independent jobs (one FF++ pair, one Celeb-DF identity, one DFDC target) so that
they run in parallel; every job derives its randomness from (seed, data set, index) only, so the
output does not depend on which process ran what. Index files (splits, test list, labels.csv) are
written by the parent from the same plan.
"""

from __future__ import annotations

import csv
import json
import string
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from iid.synth.identity import identity_from_seed
from iid.synth.methods import CELEBDF_METHOD, DFDC_METHODS, FFPP_MASKED, FFPP_METHODS, METHODS, Fake, Pair
from iid.synth.render import draw_head_base
from iid.synth.scene import Rendered, Scene, make_scene, render_scene
from iid.synth.video import write_landmarks, write_mask_video, write_video

FFPP, CELEBDF, DFDC = "FaceForensics++", "Celeb-DF-v2", "DFDC"
# data-set codes: part of every seed, so identities never repeat across data sets
_FF, _CELEB, _YT, _DFDC, _PLAN = 1, 2, 3, 4, 9
CRF_C23, CRF_DFDC = 23, 32


@dataclass(frozen=True)
class Spec:
    """Sizes of one scale."""

    frames: int  # frames per video
    size: int  # frame side in pixels
    ffpp_originals: int  # even: originals come in pairs
    celeb_ids: int
    celeb_videos: int  # videos per Celeb-DF identity
    youtube: int  # YouTube-real videos (identities of their own)
    dfdc_real: int  # DFDC: as many fakes as reals
    test_share: float = 0.14  # FF++ pairs in the test split (and as many in val, at most val_share)
    val_share: float = 0.14


def _rng(*seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(seed)))


def _scene(seed: int, code: int, idx: int, spec: Spec, lively: float = 1.0) -> Scene:
    return make_scene(identity_from_seed(seed, code, idx), _rng(seed, code, idx, 1), spec.frames, spec.size, lively)


def _write(path: Path, frames: np.ndarray, lms: np.ndarray, crf: int) -> None:
    write_landmarks(path, lms)
    write_video(path, frames, crf)


# ---------- FaceForensics++ ----------


def ffpp_pairs(seed: int, spec: Spec) -> dict[str, list[list[str]]]:
    """Official-style splits: originals paired at random; pairs split 72/14/14 like 360/70/70 (the
    `mini` scale tests on more pairs, so that a video AUC is known to about +-0.05)."""
    n = spec.ffpp_originals
    order = _rng(seed, _PLAN, _FF).permutation(n)
    pairs = [sorted([f"{order[2 * i]:03d}", f"{order[2 * i + 1]:03d}"]) for i in range(n // 2)]
    n_val, n_test = max(1, round(len(pairs) * spec.val_share)), max(1, round(len(pairs) * spec.test_share))
    n_train = len(pairs) - n_val - n_test
    return {"train": pairs[:n_train], "val": pairs[n_train : n_train + n_val], "test": pairs[n_train + n_val :]}


def ffpp_frames(seed: int, spec: Spec, pair: tuple[str, str]) -> dict[str, dict[str, Rendered | Fake]]:
    """Frames before encoding of one FF++ pair: {"real": {a, b}, method: {"a_b", "b_a"}}."""
    scenes = {v: _scene(seed, _FF, int(v), spec) for v in pair}
    heads: dict = {}
    out: dict[str, dict] = {"real": {}}
    for v, sc in scenes.items():
        heads[sc.ident] = draw_head_base(sc.ident, spec.size)
        out["real"][v] = render_scene(sc, heads[sc.ident])
    for mi, method in enumerate(FFPP_METHODS):
        out[method] = {}
        for tgt, src in (pair, pair[::-1]):
            rng = _rng(seed, _FF, int(tgt), int(src), 10 + mi)
            p = Pair(scenes[tgt], out["real"][tgt], scenes[src], out["real"][src], rng, heads)
            out[method][f"{tgt}_{src}"] = METHODS[method](p)
    return out


def ffpp_job(root: Path, seed: int, spec: Spec, pair: tuple[str, str]) -> None:
    """Originals a and b, and fakes a_b, b_a for the five methods (masks for four)."""
    base = root / FFPP
    videos = ffpp_frames(seed, spec, pair)
    for v, r in videos.pop("real").items():
        _write(base / "original_sequences/youtube/c23/videos" / f"{v}.mp4", r.frames, r.landmarks, CRF_C23)
    for method, fakes in videos.items():
        mdir = base / "manipulated_sequences" / method
        for name, fake in fakes.items():
            _write(mdir / "c23/videos" / f"{name}.mp4", fake.frames, fake.landmarks, CRF_C23)
            if method in FFPP_MASKED:
                write_mask_video(mdir / "masks/videos" / f"{name}.mp4", fake.mask)


def write_ffpp_index(root: Path, seed: int, spec: Spec) -> None:
    d = root / FFPP / "splits"
    d.mkdir(parents=True, exist_ok=True)
    for split, pairs in ffpp_pairs(seed, spec).items():
        (d / f"{split}.json").write_text(json.dumps(pairs))


# ---------- Celeb-DF-v2 ----------


def celeb_sources(seed: int, spec: Spec) -> dict[tuple[int, int], int]:
    """Source identity j of each fake id{i}_id{j}_{k}: another Celeb-DF identity."""
    rng = _rng(seed, _PLAN, _CELEB)
    n = spec.celeb_ids
    return {(i, k): int((i + rng.integers(1, n)) % n) for i in range(n) for k in range(spec.celeb_videos)}


def celeb_test_list(seed: int, spec: Spec) -> list[str]:
    """Lines like the official list: '1 <real>' and '0 <fake>'; about two thirds of each kind."""
    rng = _rng(seed, _PLAN, _CELEB, 1)
    src = celeb_sources(seed, spec)
    real = [f"Celeb-real/id{i}_{k:04d}.mp4" for i in range(spec.celeb_ids) for k in range(spec.celeb_videos)]
    youtube = [f"YouTube-real/{k:05d}.mp4" for k in range(spec.youtube)]
    fake = [f"Celeb-synthesis/id{i}_id{j}_{k:04d}.mp4" for (i, k), j in src.items()]

    def pick(items: list[str]) -> list[str]:
        keep = rng.permutation(len(items))[: max(1, (2 * len(items) + 2) // 3)]
        return [items[i] for i in sorted(keep)]

    return [f"1 {p}" for p in pick(youtube) + pick(real)] + [f"0 {p}" for p in pick(fake)]


def celeb_job(root: Path, seed: int, spec: Spec, i: int) -> None:
    """Identity i: its real videos, and one fake per real video with another identity's face."""
    base = root / CELEBDF
    src = celeb_sources(seed, spec)
    heads: dict = {}
    for k in range(spec.celeb_videos):
        # same identity in every video (seed of identity i), its own motion and background per k
        sc = make_scene(identity_from_seed(seed, _CELEB, i), _rng(seed, _CELEB, i, k, 1), spec.frames, spec.size)
        heads.setdefault(sc.ident, draw_head_base(sc.ident, spec.size))
        r = render_scene(sc, heads[sc.ident])
        _write(base / "Celeb-real" / f"id{i}_{k:04d}.mp4", r.frames, r.landmarks, CRF_C23)
        j = src[(i, k)]
        source = make_scene(identity_from_seed(seed, _CELEB, j), _rng(seed, _CELEB, j, k, 2), spec.frames, spec.size)
        fake = METHODS[CELEBDF_METHOD](Pair(sc, r, source, None, _rng(seed, _CELEB, i, j, k, 3), heads))
        _write(base / "Celeb-synthesis" / f"id{i}_id{j}_{k:04d}.mp4", fake.frames, fake.landmarks, CRF_C23)


def youtube_job(root: Path, seed: int, spec: Spec, k: int) -> None:
    sc = _scene(seed, _YT, k, spec)
    r = render_scene(sc)
    _write(root / CELEBDF / "YouTube-real" / f"{k:05d}.mp4", r.frames, r.landmarks, CRF_C23)


def write_celeb_index(root: Path, seed: int, spec: Spec) -> None:
    (root / CELEBDF).mkdir(parents=True, exist_ok=True)
    (root / CELEBDF / "List_of_testing_videos.txt").write_text("\n".join(celeb_test_list(seed, spec)) + "\n")


# ---------- DFDC public test set ----------


def dfdc_names(seed: int, spec: Spec) -> list[tuple[str, str]]:
    """(real name, fake name) per target: 10 random lowercase letters like DFDC's file names."""
    rng = _rng(seed, _PLAN, _DFDC)
    letters = np.array(list(string.ascii_lowercase))
    names: list[str] = []
    while len(names) < 2 * spec.dfdc_real:
        n = "".join(rng.choice(letters, 10))
        if n not in names:
            names.append(n)
    return [(names[2 * i], names[2 * i + 1]) for i in range(spec.dfdc_real)]


def perturb(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """DFDC-style distractors: one or two of noise, blur, resolution loss, contrast/brightness."""
    out = frames.astype(np.float32)
    S = frames.shape[1]
    for kind in rng.choice(4, size=rng.integers(1, 3), replace=False):
        if kind == 0:
            out += rng.normal(0, rng.uniform(3, 8), out.shape).astype(np.float32)
        elif kind == 1:
            s = rng.uniform(0.8, 1.6)
            out = np.stack([cv2.GaussianBlur(f, (0, 0), s) for f in out])
        elif kind == 2:
            small = int(S * rng.uniform(0.4, 0.6))
            out = np.stack([cv2.resize(cv2.resize(f, (small, small), interpolation=cv2.INTER_AREA), (S, S)) for f in out])
        else:
            out = (out - 128) * rng.uniform(0.7, 1.3) + 128 + rng.uniform(-25, 25)
    return np.clip(out, 0, 255).astype(np.uint8)


def dfdc_job(root: Path, seed: int, spec: Spec, i: int) -> None:
    """Target i: its real video and one fake (with identity i+n as source), both perturbed."""
    real_name, fake_name = dfdc_names(seed, spec)[i]
    target = _scene(seed, _DFDC, i, spec, lively=1.6)
    source = _scene(seed, _DFDC, spec.dfdc_real + i, spec, lively=1.6)
    heads: dict = {}
    r = render_scene(target, heads.setdefault(target.ident, draw_head_base(target.ident, spec.size)))
    method = DFDC_METHODS[i % len(DFDC_METHODS)]
    fake: Fake = METHODS[method](Pair(target, r, source, None, _rng(seed, _DFDC, i, 3), heads))
    videos = root / DFDC / "videos"
    for name, frames, lms, k in ((real_name, r.frames, r.landmarks, 0), (fake_name, fake.frames, fake.landmarks, 1)):
        _write(videos / f"{name}.mp4", perturb(frames, _rng(seed, _DFDC, i, 4, k)), lms, CRF_DFDC)


def dfdc_labels(seed: int, spec: Spec) -> list[tuple[str, int]]:
    rows = [(f"{r}.mp4", 0) for r, _ in dfdc_names(seed, spec)] + [(f"{f}.mp4", 1) for _, f in dfdc_names(seed, spec)]
    return sorted(rows)


def write_dfdc_index(root: Path, seed: int, spec: Spec) -> None:
    (root / DFDC).mkdir(parents=True, exist_ok=True)
    with open(root / DFDC / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "label"])
        w.writerows(dfdc_labels(seed, spec))
