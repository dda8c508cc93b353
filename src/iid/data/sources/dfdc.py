"""DFDC public test set (labels.csv: filename,label with 1 = fake; every video is test) and
DFDC-Preview (dataset.json: {"<folder>/.../<file>.mp4": {"label": "real"|"fake", "set": "train"|"test"}}).

DFDC test videos carry no identity labels: each video is its own identity. DFDC-Preview paths look like
original_videos/<subject>/... and method_A|method_B/<subject>/...: the method is the first folder
(originals are `real`), the identity the second. DFDC-Preview has no validation set: a deterministic
`val_fraction` of its train identities becomes val (as for Celeb-DF).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from iid.data.records import REAL, VideoRecord
from iid.data.sources._common import identity_val_split
from iid.errors import UserError


def _find(root: Path, name: str) -> Path | None:
    for cand in (root / name, root / "test" / name):
        if cand.is_file():
            return cand
    return None


def read_dfdc(root: str | Path, **_: object) -> list[VideoRecord]:
    root = Path(root)
    labels = _find(root, "labels.csv")
    if labels is None:
        raise UserError(f"no DFDC test set at {root}: expected labels.csv (filename,label)")
    base = labels.parent
    records = []
    missing = 0
    with labels.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"filename", "label"} <= set(reader.fieldnames):
            raise UserError(f"{labels}: expected a header with filename,label")
        for row in reader:
            name = row["filename"].strip()
            label = int(float(row["label"]))
            path = next((c for c in (base / name, base / "videos" / name) if c.is_file()), None)
            if path is None:
                missing += 1
                continue
            vid = Path(name).stem
            method = "fake" if label == 1 else REAL
            records.append(VideoRecord("dfdc", method, vid, label, "test", str(path), (vid,), "c23"))
    if not records:
        raise UserError(f"no DFDC videos found at {base}: expected the files of labels.csv there or in videos/")
    return records


def read_dfdc_preview(root: str | Path, *, val_fraction: float = 0.1, seed: int = 0, **_: object) -> list[VideoRecord]:
    root = Path(root)
    meta = root / "dataset.json"
    if not meta.is_file():
        raise UserError(f"no DFDC-Preview at {root}: expected dataset.json")
    try:
        info = json.loads(meta.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"unreadable {meta}: {err}") from err
    records = []
    for rel, d in sorted(info.items()):
        path = root / rel
        if not path.is_file():
            continue
        label = 1 if str(d.get("label", "")).lower() == "fake" else 0
        split = str(d.get("set", "train"))
        if split not in ("train", "val", "test"):
            raise UserError(f"{meta}: {rel} has 'set': {split!r}, expected train or test")
        parts = Path(rel).parts
        method = parts[0] if label == 1 and len(parts) > 1 else REAL
        ident = parts[1] if len(parts) >= 3 else path.stem
        records.append(VideoRecord("dfdc_preview", method, path.stem, label, split, str(path), (ident,), "c23"))
    if not records:
        raise UserError(f"no DFDC-Preview videos found at {root}: dataset.json lists files relative to it")
    return identity_val_split(records, val_fraction, seed)
