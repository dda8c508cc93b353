"""Writes small frame stores in the docs/interfaces.md format directly with numpy (no prepare).

Imported by the store and DataModule tests (`sys.path` insert: pytest runs in importlib mode).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from iid.data.records import VideoRecord


def ffpp_records(split: str, pairs: list[tuple[str, str]], methods=("Deepfakes", "FaceSwap")) -> list[VideoRecord]:
    """FF++-like records: each original XXX, and per method the fake XXX_YYY paired with XXX."""
    recs = []
    for tgt, src in pairs:
        recs.append(VideoRecord("ffpp", "real", tgt, 0, split, f"orig/{tgt}.mp4", (tgt,)))
        for m in methods:
            recs.append(VideoRecord("ffpp", m, f"{tgt}_{src}", 1, split, f"{m}/{tgt}_{src}.mp4", (tgt, src),
                                    source_key=f"ffpp/real/{tgt}"))
    return recs


def write_store(
    root: Path,
    records: list[VideoRecord],
    frames_per_video: int | dict[str, int] = 4,
    size: int = 16,
    no_source: set[str] = frozenset(),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Write `<root>/<dataset>/<split>/` for records (all of one dataset and split).

    Rows are video by video, `frames_per_video` frames each (frame index = position). A fake in
    `no_source` (by key) gets has_source False and deliberately non-zero bytes in sources.npy, so
    tests see that the reader zeroes them. Returns the written arrays (and index columns).
    """
    rng = np.random.default_rng(seed)
    d = Path(root) / records[0].dataset / records[0].split
    d.mkdir(parents=True, exist_ok=True)
    fpv = frames_per_video if isinstance(frames_per_video, dict) else {r.key: frames_per_video for r in records}
    n = sum(fpv[r.key] for r in records)
    out = {
        "frames": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
        "sources": rng.integers(1, 256, (n, size, size, 3), dtype=np.uint8),
        "masks": rng.integers(0, 2, (n, size, size), dtype=np.uint8),
        "landmarks": rng.random((n, 68, 2), dtype=np.float32) * size,
    }
    index = []
    for r in records:
        for f in range(fpv[r.key]):
            has = r.label == 1 and r.key not in no_source
            if r.label == 0:
                out["sources"][len(index)] = 0
            index.append({"key": r.key, "frame": f, "label": r.label, "identity": r.identity, "has_source": has})
    for name in ("frames", "sources", "masks", "landmarks"):
        mm = np.lib.format.open_memmap(d / f"{name}.npy", mode="w+", dtype=out[name].dtype, shape=out[name].shape)
        mm[:] = out[name]
        mm.flush()
        del mm
    (d / "index.json").write_text(json.dumps(index))
    (d / "videos.json").write_text(json.dumps([r.to_dict() for r in records]))
    out["index"] = index
    return out
