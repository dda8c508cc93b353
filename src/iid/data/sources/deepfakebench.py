"""DeepfakeBench-preprocessed data: its data-set JSON plus frames/, landmarks/ (81 points .npy) and masks/.

JSON forms (facts from DeepfakeBench's preprocessing/rearrange.py):
  FF++:      {"FaceForensics++": {"FF-real": {"train": {"c23": {"000": {"label": "FF-real",
               "frames": [".../frames/000/000.png", ...], "masks": [...]}}}}, "FF-DF": {...}}}
  others:    {"Celeb-DF-v2": {"CelebDFv2_real": {"train": {"id0_0000": {"label": ..., "frames": [...]}}}}}
Frames are already cropped faces saved as <...>/frames/<video>/<frame index:03d>.png with landmarks at
<...>/landmarks/<video>/<index>.npy ((81, 2); the first 68 are the iBUG points) and masks at
<...>/masks/<video>/<index>.png. Record `path` is the frame folder; `prepare` reads its images.

Frame paths in the JSON are often absolute paths of the machine that made it: each is resolved against
`root` by the longest suffix that exists there. DeepfakeBench lists Celeb-DF's test videos in train too
and uses test as val; we keep each video in one split only (test > val > train) and, when no val is
left, take a deterministic identity split of train as for Celeb-DF.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from iid.data.records import REAL, VideoRecord
from iid.data.sources._common import identity_val_split
from iid.errors import UserError

log = logging.getLogger(__name__)

DATASET = "deepfakebench"
FF_METHODS = {
    "FF-DF": "Deepfakes", "FF-F2F": "Face2Face", "FF-FS": "FaceSwap", "FF-NT": "NeuralTextures",
    "FF-FH": "FaceShifter",
}  # fmt: skip
_SPLIT_RANK = {"test": 0, "val": 1, "train": 2}
_CELEB_FAKE = re.compile(r"^(id\d+)_(id\d+)_(\d+)$")
_CELEB_REAL = re.compile(r"^(id\d+)_(\d+)$")
_FF_FAKE = re.compile(r"^(\d{3})_(\d{3})$")


def _is_entry(x: object) -> bool:
    return isinstance(x, dict) and isinstance(x.get("frames"), list)


def _resolve(root: Path, p: str) -> Path | None:
    """An existing path for `p`: as given, else the longest suffix of it that exists under root."""
    path = Path(p)
    if path.is_absolute() and path.exists():
        return path
    parts = path.parts[1:] if path.is_absolute() else path.parts
    for i in range(len(parts)):
        cand = root.joinpath(*parts[i:])
        if cand.exists():
            return cand
    return None


def _sibling(frame_dir: Path, kind: str) -> Path:
    """.../frames/<video> -> .../<kind>/<video> (the last `frames` component is swapped)."""
    parts = list(frame_dir.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "frames":
            parts[i] = kind
            return Path(*parts)
    return frame_dir.parent / kind / frame_dir.name


def landmark_file(frame_file: Path) -> Path:
    """Landmarks (.npy) of one DeepfakeBench frame image."""
    return _sibling(frame_file.parent, "landmarks") / (frame_file.stem + ".npy")


def _identities(vid: str, label: int) -> tuple[tuple[str, ...], str | None]:
    """(identities, source video id) from the naming conventions of FF++ and Celeb-DF."""
    m = _FF_FAKE.match(vid) or _CELEB_FAKE.match(vid)
    if label == 1 and m:
        if len(m.groups()) == 2:
            return (m.group(1), m.group(2)), m.group(1)
        return (m.group(1), m.group(2)), f"{m.group(1)}_{m.group(3)}"
    m = _CELEB_REAL.match(vid)
    return ((m.group(1),) if m else (vid,)), None


def _find_json(root: Path) -> Path:
    cands = sorted(root.glob("*.json")) + sorted((root / "dataset_json").glob("*.json"))
    if len(cands) == 1:
        return cands[0]
    raise UserError(
        f"no single DeepfakeBench data-set JSON at {root}: expected one *.json (or dataset_json/*.json);"
        " pass data.json=FILE"
    )


def read_deepfakebench(
    root: str | Path,
    *,
    json_file: str | Path | None = None,
    compression: str = "c23",
    dataset: str = DATASET,
    val_fraction: float = 0.1,
    seed: int = 0,
    **_: object,
) -> list[VideoRecord]:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"no DeepfakeBench data at {root}: expected a folder with its JSON and frames/")
    jf = Path(json_file) if json_file else _find_json(root)
    if not jf.is_absolute() and not jf.is_file():
        jf = root / jf
    try:
        data = json.loads(jf.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"unreadable DeepfakeBench JSON {jf}: {err}") from err

    best: dict[str, tuple[int, VideoRecord]] = {}
    dropped = unresolved = 0
    for _ds_name, labels in data.items():
        if not isinstance(labels, dict):
            continue
        for label_key, splits in labels.items():
            label = 0 if "real" in label_key.lower() else 1
            method = REAL if label == 0 else FF_METHODS.get(label_key, label_key)
            for split, level in (splits or {}).items():
                if split not in _SPLIT_RANK or not isinstance(level, dict):
                    continue
                videos = level
                if not any(_is_entry(v) for v in level.values()):  # FF++ form: a compression level first
                    videos = level.get(compression, {})
                for vid, entry in (videos or {}).items():
                    if not _is_entry(entry) or not entry["frames"]:
                        continue
                    frame = _resolve(root, entry["frames"][0])
                    if frame is None:
                        unresolved += 1
                        continue
                    frame_dir = frame.parent
                    ids, src = _identities(vid, label)
                    mask_dir = _sibling(frame_dir, "masks")
                    rec = VideoRecord(
                        dataset, method, vid, label, split, str(frame_dir), ids, compression,
                        f"{dataset}/{REAL}/{src}" if src else None,
                        str(mask_dir) if mask_dir.is_dir() else None,
                    )  # fmt: skip
                    rank = _SPLIT_RANK[split]
                    if rec.key in best:
                        dropped += 1
                        if rank >= best[rec.key][0]:
                            continue
                    best[rec.key] = (rank, rec)
    records = [r for _, r in best.values()]
    if dropped:
        log.warning("DeepfakeBench JSON lists %d videos in more than one split: kept test > val > train", dropped)
    if unresolved:
        log.warning("DeepfakeBench: frames of %d videos not found under %s", unresolved, root)
    if not records:
        raise UserError(f"no DeepfakeBench videos resolved from {jf}: expected its frames/ folders under {root}")
    keys = {r.key for r in records}
    records = [
        r if r.source_key is None or r.source_key in keys else _without_source(r) for r in records
    ]
    if not any(r.split == "val" for r in records):
        records = identity_val_split(records, val_fraction, seed)
    return sorted(records, key=lambda r: r.key)


def _without_source(r: VideoRecord) -> VideoRecord:
    import dataclasses

    return dataclasses.replace(r, source_key=None)
