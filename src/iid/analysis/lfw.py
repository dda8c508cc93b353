"""A face-recognition set in LFW's layout (`lfw/<name>/<name>_NNNN.jpg`) as a frame store.

Each image is a one-frame "video" (method `real`, identity `<name>`) put through prepare's own
pipeline (`iid.data.preparation.prepare_records`: the landmark backend, 5-point alignment onto the
canvas, hull mask), so its faces are aligned exactly as the deepfake data sets' are. The store is
written once under `<stores>/lfw/lfw/test` and reused (prepare skips finished images). People with
fewer than `min_images` images cannot be on both sides of a probe split and are left out.

`lfw_from_videos` writes such a folder from videos with landmark sidecars (the embedded benchmark):
a few stills per video, each with its `<stem>.landmarks.npy`, so `landmarks=oracle` aligns them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from iid.data.records import REAL, VideoRecord
from iid.errors import UserError

DATASET = "lfw"
IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def lfw_folder(root: str | Path) -> Path:
    """The folder holding one sub-folder per person: `root` itself or `root/lfw`."""
    root = Path(root).expanduser()
    for cand in (root, root / "lfw"):
        if cand.is_dir() and any(_images(p) for p in cand.iterdir() if p.is_dir()):
            return cand
    raise UserError(f"analysis.lfw={root}: no LFW layout there (expected <name>/<name>_NNNN.jpg folders)")


def _images(person: Path) -> list[Path]:
    pat = re.compile(rf"^{re.escape(person.name)}_\d+$")
    return sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_EXTS and pat.match(p.stem))


def lfw_records(root: str | Path, min_images: int = 2) -> list[VideoRecord]:
    """One record per image of the people with at least `min_images` images."""
    folder = lfw_folder(root)
    recs = []
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        imgs = _images(person)
        if len(imgs) < min_images:
            continue
        recs += [VideoRecord(DATASET, REAL, p.stem, 0, "test", str(p), (person.name,), compression="") for p in imgs]
    if not recs:
        raise UserError(f"analysis.lfw={root}: no person has {min_images} or more images")
    return recs


def lfw_store(root: str | Path, store_root: str | Path, *, landmarks: str = "dlib", min_images: int = 2,
              store_size: int = 256, workers: int = 1, progress: bool = False):
    """The FrameStore of an LFW-layout folder, prepared on first use (aligned like every store)."""
    from iid.data.extract import ExtractConfig
    from iid.data.preparation import prepare_records
    from iid.data.store import FrameStore

    recs = lfw_records(root, min_images)
    cfg = ExtractConfig(frames=1, landmarks=landmarks, store_size=int(store_size))
    prepare_records(recs, store_root, cfg, workers=workers, progress=progress)
    return FrameStore(store_root, DATASET, "test")


def lfw_from_videos(videos: list[tuple[str, Path]], out: str | Path, per_video: int = 2) -> Path:
    """Write `out/lfw/<name>/<name>_NNNN.jpg` (+ `.landmarks.npy` sidecars) from (person, video) pairs:
    `per_video` stills per video at equal intervals. Returns the `lfw` folder."""
    import cv2

    from iid.data.faces import OracleBackend
    from iid.data.video import sample_video

    folder = Path(out) / "lfw"
    counts: dict[str, int] = {}
    for name, video in videos:
        lms = np.load(OracleBackend.sidecar(str(video)))
        idx, frames = sample_video(video, per_video)
        for i in idx:
            if int(i) not in frames or not np.isfinite(lms[int(i)]).all():
                continue
            counts[name] = counts.get(name, 0) + 1
            d = folder / name
            d.mkdir(parents=True, exist_ok=True)
            stem = f"{name}_{counts[name]:04d}"
            cv2.imwrite(str(d / f"{stem}.jpg"), frames[int(i)][:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            np.save(d / f"{stem}.landmarks.npy", lms[int(i)][None].astype(np.float32))
    return folder


def lfw_from_celebdf(celebdf_root: str | Path, out: str | Path, per_video: int = 2) -> Path:
    """An LFW-layout set from the real videos of a (synthetic) Celeb-DF folder: `Celeb-real/id{i}_{k}.mp4`
    gives person id{i}; every identity has several videos, so several images."""
    root = Path(celebdf_root) / "Celeb-real"
    pairs = []
    for v in sorted(root.glob("*.mp4")):
        m = re.match(r"^(id\d+)_\d+$", v.stem)
        if m:
            pairs.append((m.group(1), v))
    if not pairs:
        raise UserError(f"no Celeb-real/id<i>_<k>.mp4 videos under {celebdf_root}")
    return lfw_from_videos(pairs, out, per_video)
