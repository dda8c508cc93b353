"""Small helpers shared by the dataset readers."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from pathlib import Path

from iid.data.records import VideoRecord
from iid.errors import UserError

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def expect_dir(root: Path, rel: str, what: str) -> Path:
    """`root/rel` must be a folder, else one line naming what was expected there."""
    p = Path(root) / rel
    if not p.is_dir():
        raise UserError(f"no {what} at {root}: expected {rel}")
    return p


def expect_file(root: Path, rel: str, what: str) -> Path:
    p = Path(root) / rel
    if not p.is_file():
        raise UserError(f"no {what} at {root}: expected {rel}")
    return p


def videos_in(folder: Path) -> list[Path]:
    """Video files directly in `folder`, sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTS and p.is_file())


def _rank(identity: str, seed: int) -> str:
    # a hash, not Python's randomised hash(): the same split on every machine and run
    return hashlib.sha1(f"{seed}:{identity}".encode()).hexdigest()


def identity_val_split(
    records: Iterable[VideoRecord], fraction: float = 0.1, seed: int = 0
) -> list[VideoRecord]:
    """Move the train videos of a deterministic `fraction` of target identities (at least one when
    there are two or more) to `val`. Identities are ranked by a seeded SHA-1, so the split depends only
    on the identity names and `seed`, not on file order."""
    records = list(records)
    ids = sorted({r.identity for r in records if r.split == "train"})
    if len(ids) < 2 or fraction <= 0:
        return records
    k = max(1, round(fraction * len(ids)))
    val_ids = set(sorted(ids, key=lambda i: _rank(i, seed))[:k])
    return [
        dataclasses.replace(r, split="val") if r.split == "train" and r.identity in val_ids else r
        for r in records
    ]
