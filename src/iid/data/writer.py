"""Writes the frame store of docs/interfaces.md: per-video shards (atomic, resumable), then packed splits.

Layout under `<store_root>/<dataset>/`:
  .shards/<split>/<method>/<video_id>.npz   one per processed video (arrays + a JSON `meta` string)
  <split>/{frames,sources,masks,landmarks}.npy, index.json, videos.json   the packed store
  manifest.jsonl                            per video: what happened in prepare

A shard is written to a temporary name and renamed, so a killed run leaves only complete shards; a
re-run skips every shard whose fingerprint (prepare settings + record) matches. Packing streams the
shards into `np.lib.format.open_memmap` arrays (no need to hold a split in RAM), in sorted key order, so
the packed store depends only on the shards, not on the order or the number of runs that made them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from iid.data.records import VideoRecord

ARRAYS = ("frames", "sources", "masks", "landmarks")


def shard_path(store_root: Path, rec: VideoRecord) -> Path:
    return Path(store_root) / rec.dataset / ".shards" / rec.split / rec.method / f"{rec.video_id}.npz"


def empty_arrays(size: int) -> dict[str, np.ndarray]:
    return {
        "frames": np.zeros((0, size, size, 3), np.uint8),
        "sources": np.zeros((0, size, size, 3), np.uint8),
        "masks": np.zeros((0, size, size), np.uint8),
        "landmarks": np.zeros((0, 68, 2), np.float32),
        "frame_index": np.zeros(0, np.int64),
        "has_source": np.zeros(0, bool),
    }


def write_shard(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Atomically write one video's rows and its manifest entry (tmp file in the same folder + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_meta(path: Path) -> dict | None:
    """A shard's meta, or None when it is missing or unreadable (then the video is redone)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, EOFError):
        return None


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def pack_split(store_root: Path, dataset: str, split: str, records: Iterable[VideoRecord], size: int) -> int:
    """Pack the shards of `records` (one split) into `<store_root>/<dataset>/<split>/`; returns rows.

    Videos with no rows (unreadable, no face) are in the manifest but not in videos.json.
    """
    records = sorted(records, key=lambda r: r.key)
    metas = []
    for r in records:
        meta = read_meta(shard_path(store_root, r))
        if meta is not None and meta["rows"] > 0:
            metas.append((r, meta))
    n = sum(m["rows"] for _, m in metas)
    final = Path(store_root) / dataset / split
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{split}.packing."))
    try:
        out = {
            "frames": np.lib.format.open_memmap(tmp / "frames.npy", "w+", np.uint8, (n, size, size, 3)),
            "sources": np.lib.format.open_memmap(tmp / "sources.npy", "w+", np.uint8, (n, size, size, 3)),
            "masks": np.lib.format.open_memmap(tmp / "masks.npy", "w+", np.uint8, (n, size, size)),
            "landmarks": np.lib.format.open_memmap(tmp / "landmarks.npy", "w+", np.float32, (n, 68, 2)),
        }
        index, videos = [], []
        row = 0
        for r, meta in metas:
            with np.load(shard_path(store_root, r), allow_pickle=False) as z:
                k = meta["rows"]
                for name in ARRAYS:
                    out[name][row : row + k] = z[name]
                for fi, hs in zip(z["frame_index"].tolist(), z["has_source"].tolist()):
                    index.append(
                        {"key": r.key, "frame": int(fi), "label": r.label, "identity": r.identity,
                         "has_source": bool(hs)}
                    )  # fmt: skip
            videos.append(r.to_dict())
            row += k
        for arr in out.values():
            arr.flush()
        del out
        (tmp / "index.json").write_text(json.dumps(index))
        (tmp / "videos.json").write_text(json.dumps(videos, indent=0))
        # swap in: the old split (if any) stays complete until the new one is in place
        old = final.with_name(f".{split}.old.{os.getpid()}")
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n


def write_manifest(store_root: Path, dataset: str, records: Iterable[VideoRecord]) -> Path:
    """`<store_root>/<dataset>/manifest.jsonl`: one JSON line per video (sorted by key) from its shard."""
    lines = []
    for r in sorted(records, key=lambda r: r.key):
        meta = read_meta(shard_path(store_root, r))
        entry = {"key": r.key, "split": r.split}
        entry.update(meta["manifest"] if meta else {"status": "not_processed"})
        lines.append(json.dumps(entry, sort_keys=True))
    path = Path(store_root) / dataset / "manifest.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return path
