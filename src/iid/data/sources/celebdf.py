"""Celeb-DF v1 / v2: Celeb-real/id{i}_{k}.mp4, YouTube-real/{n}.mp4, Celeb-synthesis/id{i}_id{j}_{k}.mp4
and List_of_testing_videos.txt ("<1 real|0 fake> <folder>/<file>.mp4" per line).

Splits: test = exactly the videos of the test list; train = every other video (never a test video).
Celeb-DF has no official validation split: `val_fraction` of the target identities of the train part
(chosen by a seeded hash of the identity name, so deterministic) become `val`, with all their videos,
so no identity is both in train and in our val by construction. Identity: id{i}; a YouTube-real video is
its own identity (its video id). A synthesis video id{i}_id{j}_{k} shows target i's video k with j's
face: identities (id{i}, id{j}), paired source Celeb-real/id{i}_{k} when that file exists.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from iid.data.records import REAL, VideoRecord
from iid.data.sources._common import expect_dir, expect_file, identity_val_split, videos_in
from iid.errors import UserError

log = logging.getLogger(__name__)

FAKE_METHOD = "synthesis"
_FAKE = re.compile(r"^(id\d+)_(id\d+)_(\d+)$")
_REAL = re.compile(r"^(id\d+)_(\d+)$")


def read_test_list(root: Path) -> set[str]:
    """Relative paths ("Celeb-real/id0_0000.mp4") of the official test videos."""
    f = expect_file(root, "List_of_testing_videos.txt", "Celeb-DF")
    out = set()
    for n, line in enumerate(f.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise UserError(f"{f}:{n}: expected '<label> <folder>/<video>.mp4', got {line!r}")
        out.add(parts[1])
    return out


def read_celebdf(
    root: str | Path, *, dataset: str = "celebdf", val_fraction: float = 0.1, seed: int = 0, **_: object
) -> list[VideoRecord]:
    root = Path(root)
    expect_dir(root, "Celeb-real", "Celeb-DF")
    test = read_test_list(root)
    real_ids = {p.stem for p in videos_in(root / "Celeb-real")}
    records: list[VideoRecord] = []
    seen = set()
    for folder in ("Celeb-real", "YouTube-real", "Celeb-synthesis"):
        for p in videos_in(root / folder):
            rel = f"{folder}/{p.name}"
            seen.add(rel)
            split = "test" if rel in test else "train"
            vid = p.stem
            if folder == "Celeb-synthesis":
                m = _FAKE.match(vid)
                if not m:
                    log.warning("Celeb-DF: unexpected synthesis name %s, skipped", rel)
                    continue
                target, source, k = m.groups()
                src = f"{target}_{k}"
                records.append(
                    VideoRecord(
                        dataset, FAKE_METHOD, vid, 1, split, str(p), (target, source), "c23",
                        f"{dataset}/{REAL}/{src}" if src in real_ids else None, None,
                    )
                )  # fmt: skip
            else:
                m = _REAL.match(vid)
                ident = m.group(1) if (folder == "Celeb-real" and m) else vid
                records.append(VideoRecord(dataset, REAL, vid, 0, split, str(p), (ident,), "c23"))
    missing = test - seen
    if missing:
        log.warning("Celeb-DF: %d videos of the test list are missing under %s", len(missing), root)
    return identity_val_split(records, val_fraction, seed)
