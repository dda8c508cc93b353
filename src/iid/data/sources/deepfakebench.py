"""DeepfakeBench-preprocessed data: its data-set JSON plus frames/, landmarks/ (81 points .npy) and masks/.

JSON forms (facts from DeepfakeBench's preprocessing/rearrange.py):
  FF++:      {"FaceForensics++": {"FF-real": {"train": {"c23": {"000": {"label": "FF-real",
               "frames": [".../frames/000/000.png", ...], "masks": [...]}}}}, "FF-DF": {...}}}
  others:    {"Celeb-DF-v2": {"CelebDFv2_real": {"train": {"id0_0000": {"label": ..., "frames": [...]}}}}}
Frames are already cropped faces saved as <...>/frames/<video>/<frame index:03d>.png with landmarks at
<...>/landmarks/<video>/<index>.npy ((81, 2); the first 68 are the iBUG points) and masks at
<...>/masks/<video>/<index>.png. Record `path` is the frame folder; `prepare` reads its images.

Frame paths in the JSON are often absolute paths of the machine that made it, with `\\` separators when
that was Windows: each is resolved against `root` by the longest suffix that exists there. A video whose
frames folder is not found keeps its record (at the expected path; `prepare` records it as missing), and
one listed with no frames too (empty path), so the manifest names every video of the JSON.

Records and stores are named after the JSON's data set (`store_name`: FaceForensics++ -> ffpp,
Celeb-DF-v2 -> celebdf, DFDC -> dfdc, ...), so JSONs of different data sets never share a store and
FF++-trained models can be tested on the others (`json: Celeb-DF-v2` in a cross test set).
DeepfakeBench lists Celeb-DF's test videos in train too and uses test as val; we keep each video in one
split only (test > val > train) and, when no val is left, take a deterministic identity split of train
as for Celeb-DF.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from iid.data.records import REAL, VideoRecord
from iid.data.sources._common import identity_val_split
from iid.errors import UserError

log = logging.getLogger(__name__)

DATASET = "deepfakebench"  # only the reader's name now: records are named after the JSON's data set
# DeepfakeBench's data-set names -> the names the native readers give the same data sets
STORE_NAMES = {
    "FaceForensics++": "ffpp", "Celeb-DF-v1": "celebdf_v1", "Celeb-DF-v2": "celebdf", "DFDC": "dfdc",
    "DFDCP": "dfdc_preview",
}  # fmt: skip
FF_METHODS = {
    "FF-DF": "Deepfakes", "FF-F2F": "Face2Face", "FF-FS": "FaceSwap", "FF-NT": "NeuralTextures",
    "FF-FH": "FaceShifter",
}  # fmt: skip
_SPLIT_RANK = {"test": 0, "val": 1, "train": 2}
_CELEB_FAKE = re.compile(r"^(id\d+)_(id\d+)_(\d+)$")
_CELEB_REAL = re.compile(r"^(id\d+)_(\d+)$")
_FF_FAKE = re.compile(r"^(\d{3})_(\d{3})$")
JSON_DIRS = (".", "dataset_json", "preprocessing/dataset_json")  # where <name>.json is looked for under root


def store_name(json_name: str) -> str:
    """The data-set name of a DeepfakeBench JSON's top-level key, as stores and record keys use it."""
    if json_name in STORE_NAMES:
        return STORE_NAMES[json_name]
    return re.sub(r"[^a-z0-9]+", "_", json_name.lower()).strip("_") or DATASET


def _is_entry(x: object) -> bool:
    return isinstance(x, dict) and isinstance(x.get("frames"), list)


def _parts(p: str) -> tuple[tuple[str, ...], bool]:
    """(path components without the anchor, absolute?) of a JSON path, POSIX or Windows
    (`D:\\data\\x.png`, `.\\datasets\\x.png`, `\\\\server\\share\\x.png`)."""
    if "\\" in p or re.match(r"^[A-Za-z]:", p):
        w = PureWindowsPath(p)
        parts = w.parts[1:] if w.anchor else w.parts
        return tuple(x for x in parts if x not in (".", "")), bool(w.anchor)
    q = PurePosixPath(p)
    parts = q.parts[1:] if q.is_absolute() else q.parts
    return tuple(x for x in parts if x not in (".", "")), q.is_absolute()


class _Resolver:
    """Finds a JSON path under `root` by its longest existing suffix. The number of leading components
    to drop is nearly always the same for one JSON: the last one that worked is tried first."""

    def __init__(self, root: Path):
        self.root = root
        self.drop: int | None = None

    def __call__(self, p: str) -> tuple[Path | None, Path]:
        """(the existing path or None, where it was expected)."""
        parts, absolute = _parts(p)
        if absolute and "\\" not in p and Path(p).exists():
            return Path(p), Path(p)
        order = range(len(parts)) if self.drop is None else [self.drop, *range(len(parts))]
        for i in order:
            if i >= len(parts):
                continue
            cand = self.root.joinpath(*parts[i:])
            if cand.exists():
                self.drop = i
                return cand, cand
        if self.drop is not None and self.drop < len(parts):
            return None, self.root.joinpath(*parts[self.drop :])
        return None, self.root.joinpath(*parts) if not absolute else Path("/", *parts)


def _sibling(frame_dir: Path, kind: str) -> Path:
    """.../frames/<video> -> .../<kind>/<video> (the last `frames` component is swapped)."""
    parts = list(frame_dir.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "frames":
            parts[i] = kind
            return Path(*parts)
    return frame_dir.parent / kind / frame_dir.name


def landmark_dir(frame_dir: Path) -> Path:
    """The landmark folder of a DeepfakeBench frame folder."""
    return _sibling(Path(frame_dir), "landmarks")


def landmark_file(frame_file: Path) -> Path:
    """Landmarks (.npy) of one DeepfakeBench frame image."""
    return landmark_dir(frame_file.parent) / (frame_file.stem + ".npy")


def _identities(vid: str, label: int) -> tuple[tuple[str, ...], str | None]:
    """(identities, source video id) from the naming conventions of FF++ and Celeb-DF."""
    m = _FF_FAKE.match(vid) or _CELEB_FAKE.match(vid)
    if label == 1 and m:
        if len(m.groups()) == 2:
            return (m.group(1), m.group(2)), m.group(1)
        return (m.group(1), m.group(2)), f"{m.group(1)}_{m.group(3)}"
    m = _CELEB_REAL.match(vid)
    return ((m.group(1),) if m else (vid,)), None


def find_json(root: Path, json_file: str | Path | None = None) -> Path:
    """The data-set JSON: `json_file` as a path (absolute, or relative to the working folder or to
    root), or a data-set name found as <name>.json in root, root/dataset_json or
    root/preprocessing/dataset_json; without one, the only JSON there."""
    if json_file:
        p = Path(json_file)
        names = [p] if p.suffix == ".json" else [p, p.with_name(p.name + ".json")]
        cands = [c for n in names for c in ([n] if n.is_absolute() else [n, *(root / d / n for d in JSON_DIRS)])]
        for c in cands:
            if c.is_file():
                return c
        raise UserError(
            f"no DeepfakeBench JSON {str(json_file)!r} at {root} (looked in {', '.join(JSON_DIRS)}): "
            "pass data.json=FILE or the data set's name (e.g. Celeb-DF-v2); a cross test set you lack: "
            "~data.cross.<name> and leave it out of data.test_sets"
        )
    cands = sorted({c for d in JSON_DIRS for c in (root / d).glob("*.json")})
    if len(cands) == 1:
        return cands[0]
    raise UserError(
        f"no single DeepfakeBench data-set JSON at {root} ({len(cands)} found): pass data.json=FILE or "
        "data.json=<data set name> (e.g. Celeb-DF-v2)"
    )


def read_deepfakebench(
    root: str | Path,
    *,
    json_file: str | Path | None = None,
    compression: str = "c23",
    dataset: str | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    **_: object,
) -> list[VideoRecord]:
    """Records of one DeepfakeBench JSON; `dataset` overrides the name taken from the JSON."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"no DeepfakeBench data at {root}: expected a folder with its JSON and frames/")
    jf = find_json(root, json_file)
    try:
        data = json.loads(jf.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"unreadable DeepfakeBench JSON {jf}: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"DeepfakeBench JSON {jf} is not an object of data sets")

    resolve = _Resolver(root)
    best: dict[str, tuple[int, VideoRecord]] = {}
    dropped, unresolved, empty, found_any = 0, [], [], False
    for ds_name, labels in data.items():
        if not isinstance(labels, dict):
            continue
        ds = dataset or store_name(ds_name)
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
                    if not _is_entry(entry):
                        continue
                    ids, src = _identities(vid, label)
                    key = f"{ds}/{method}/{vid}"
                    if not entry["frames"]:
                        path, mask = "", None  # listed without frames: recorded as missing by prepare
                        empty.append(key)
                    else:
                        found, expected = resolve(str(entry["frames"][0]))
                        frame_dir = (found or expected).parent
                        if found is None:
                            unresolved.append(key)
                        found_any |= found is not None
                        path = str(frame_dir)
                        mask_dir = _sibling(frame_dir, "masks")
                        mask = str(mask_dir) if mask_dir.is_dir() else None
                    rec = VideoRecord(
                        ds, method, vid, label, split, path, ids, compression,
                        f"{ds}/{REAL}/{src}" if src else None, mask,
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
        log.warning("DeepfakeBench: frames of %d videos not found under %s (first: %s): recorded as missing",
                    len(unresolved), root, unresolved[0])  # fmt: skip
    if empty:
        log.warning("DeepfakeBench JSON %s lists %d videos without frames (first: %s): recorded as missing",
                    jf, len(empty), empty[0])  # fmt: skip
    if not found_any:
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
