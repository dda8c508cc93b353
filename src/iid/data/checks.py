"""Load-time checks on a list of video records: split hygiene before anything trains on them."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations

from iid.data.records import VideoRecord
from iid.errors import UserError

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def check_no_split_overlap(records: Iterable[VideoRecord]) -> None:
    """No video (by key, or by file) in more than one split: an error, since it leaks test into train."""
    where: dict[str, set[str]] = defaultdict(set)
    for r in records:
        where[r.key].add(r.split)
        if r.path:  # empty: listed without any media (recorded as missing), nothing to share
            where["file:" + r.path].add(r.split)
    bad = sorted(k for k, s in where.items() if len(s) > 1)
    if bad:
        raise UserError(
            f"{len(bad)} videos are in more than one split (first: {bad[0]} in "
            f"{sorted(where[bad[0]])}): fix the split lists"
        )


def check_test_list(records: Iterable[VideoRecord], test_files: Iterable[str]) -> None:
    """Every record whose file is on the official test list (relative 'folder/name.mp4') is in test."""
    test = set(test_files)
    bad = [r.key for r in records if "/".join(r.path.replace("\\", "/").split("/")[-2:]) in test and r.split != "test"]
    if bad:
        raise UserError(f"{len(bad)} videos of the official test list are outside test (first: {bad[0]})")


def shared_identities(records: Iterable[VideoRecord]) -> dict[str, int]:
    """Number of identities (any of a video's identities) present in both splits, per split pair."""
    ids: dict[str, set[str]] = defaultdict(set)
    for r in records:
        ids[r.split].update(r.identities or (r.identity,))
    return {f"{a}&{b}": len(ids[a] & ids[b]) for a, b in combinations(SPLITS, 2)}


def check_records(records: list[VideoRecord], test_files: Iterable[str] | None = None) -> list[str]:
    """Run every check; errors raise `UserError`, findings come back (and are logged) as warning lines."""
    check_no_split_overlap(records)
    if test_files is not None:
        check_test_list(records, test_files)
    warnings = []
    shared = shared_identities(records)
    if any(shared.values()):
        counts = ", ".join(f"{k}={v}" for k, v in shared.items())
        warnings.append(f"identities shared across splits: {counts}")
    for w in warnings:
        log.warning(w)
    return warnings
