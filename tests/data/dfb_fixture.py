"""Small DeepfakeBench-preprocessed folders: frame images, 81-point landmark files and data-set JSONs.

Imported by the data tests (`sys.path` insert: pytest runs in importlib mode).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from face_fixture import procedural_face_68

FF_SUB = {"FF-real": "original_sequences/youtube", "FF-DF": "manipulated_sequences/Deepfakes"}


def write_frames(folder: Path, level: int, n: int = 4, size: int = 96) -> list[Path]:
    """n frame images <idx:03d>.png (every 5th index) of a flat face, and their landmark files."""
    files = []
    for k in range(n):
        idx = 5 * k
        f = folder / f"{idx:03d}.png"
        f.parent.mkdir(parents=True, exist_ok=True)
        img = np.full((size, size, 3), level, np.uint8)
        cv2.circle(img, (size // 2, size // 2 + 4), size // 10, (20, 20, 20), -1)
        cv2.imwrite(str(f), img)
        parts = list(f.parent.parts)
        parts[len(parts) - 1 - parts[::-1].index("frames")] = "landmarks"
        lm = Path(*parts) / f"{idx:03d}.npy"
        lm.parent.mkdir(parents=True, exist_ok=True)
        face = procedural_face_68((size / 2, size / 2 - 6), size / 4)
        np.save(lm, np.concatenate([face, np.zeros((13, 2), np.float32)]))
        files.append(f)
    return files


def json_path(root: Path, files: list[Path], prefix: str = "", windows: bool = False) -> list[str]:
    """How a DeepfakeBench JSON names frames: relative to root, under another machine's `prefix`."""
    out = []
    for f in files:
        rel = str(f.relative_to(root))
        p = f"{prefix}/{rel}" if prefix else rel
        out.append(p.replace("/", "\\") if windows else p)
    return out


def write_json(root: Path, name: str, tree: dict) -> Path:
    path = root / "dataset_json" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({name: tree}))
    return path


def ffpp_dfb(root: Path, prefix: str = "", windows: bool = False, extra: dict | None = None) -> Path:
    """FaceForensics++.json: reals 000-003 and fakes 000_001 (train), 002_003 (test), c23 form."""
    tree: dict = {"FF-real": {}, "FF-DF": {}}
    plan = [("FF-real", "train", "000", 60), ("FF-real", "train", "001", 70), ("FF-DF", "train", "000_001", 200),
            ("FF-real", "test", "002", 80), ("FF-real", "test", "003", 90), ("FF-DF", "test", "002_003", 210)]  # fmt: skip
    for label, split, vid, level in plan:
        files = write_frames(root / "FaceForensics++" / FF_SUB[label] / "c23/frames" / vid, level)
        entry = {"label": label, "frames": json_path(root, files, prefix, windows)}
        tree[label].setdefault(split, {"c23": {}})["c23"][vid] = entry
    for label, split, vid, entry in (extra or {}).get("entries", []):
        tree[label].setdefault(split, {"c23": {}})["c23"][vid] = entry
    return write_json(root, "FaceForensics++", tree)


def flat_dfb(root: Path, name: str, real_label: str, fake_label: str, videos: dict[str, int]) -> Path:
    """A test-only JSON of the non-FF++ form ({label: {"test": {vid: entry}}}): Celeb-DF-v2, DFDC, ...
    `videos`: {vid: label (0/1)}."""
    tree: dict = {real_label: {"test": {}}, fake_label: {"test": {}}}
    for i, (vid, y) in enumerate(sorted(videos.items())):
        label = fake_label if y else real_label
        files = write_frames(root / name / ("fake" if y else "real") / "frames" / vid, 50 + 20 * i)
        tree[label]["test"][vid] = {"label": label, "frames": json_path(root, files)}
    return write_json(root, name, tree)
