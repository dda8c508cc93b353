"""The prepare engine: records -> per-video shards (parallel, resumable) -> packed frame stores.

`prepare_dataset(reader, root, store_root, ...)` reads a raw layout and builds its frame store
(docs/interfaces.md); `prepare_records(records, store_root, cfg)` does the same for records already
read. Per video N frames at equal intervals, landmarks, 5-point alignment, source frames for fakes,
hull masks; finished videos are skipped on a re-run, one manifest line per video. The Hydra entry
point is `iid.prepare`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from iid.data.extract import ExtractConfig, extract_video, is_video_file, record_inputs
from iid.data.faces import LandmarkBackend, get_backend
from iid.data.inputs import same_inputs, states
from iid.data.records import VideoRecord
from iid.data.sources import get_reader
from iid.data.writer import (
    check_writable,
    pack_split,
    read_meta,
    shard_path,
    store_error,
    sweep_temporaries,
    write_manifest,
    write_shard,
)
from iid.errors import UserError

log = logging.getLogger(__name__)

_BACKEND: LandmarkBackend | None = None  # one per worker process
_BACKEND_NAME: str | None = None


def _backend(name: str) -> LandmarkBackend:
    global _BACKEND, _BACKEND_NAME
    if _BACKEND is None or _BACKEND_NAME != name:
        _BACKEND, _BACKEND_NAME = get_backend(name), name
    return _BACKEND


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # parallelism is over videos; no oversubscription


def process_one(task: tuple[VideoRecord, VideoRecord | None, ExtractConfig, str, str, dict]) -> tuple[str, str]:
    """Extract one video and write its shard atomically; returns (key, manifest status)."""
    rec, source, cfg, store_root, fingerprint, inputs = task
    backend = _backend(cfg.landmarks) if is_video_file(rec.path) else None
    arrays, man = extract_video(rec, source, cfg, backend)
    meta = {"fingerprint": fingerprint, "inputs": inputs, "rows": int(len(arrays["frame_index"])), "manifest": man}
    write_shard(shard_path(Path(store_root), rec), arrays, meta)
    return rec.key, man["status"]


def _run(tasks: list, workers: int) -> Iterator[tuple[str, str]]:
    if workers <= 1 or len(tasks) <= 1:
        _init_worker()
        for t in tasks:
            yield process_one(t)
        return
    # spawn: dlib/cv2/av state is not fork-safe; each worker loads its own landmark model once
    ctx = mp.get_context("spawn")
    with ctx.Pool(min(workers, len(tasks)), initializer=_init_worker) as pool:
        yield from pool.imap_unordered(process_one, tasks, chunksize=1)


def _progress(it: Iterator, total: int, enabled: bool, label: str) -> Iterator:
    if not enabled or total == 0:
        yield from it
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task(label, total=total)
        for x in it:
            bar.advance(task)
            yield x


def prepare_records(
    records: Sequence[VideoRecord],
    store_root: str | Path,
    cfg: ExtractConfig,
    *,
    workers: int = 1,
    progress: bool = True,
    content_hash: bool = False,
) -> dict:
    """Process the records not yet done, pack every split, write the manifest; returns a summary.

    A video is done when its shard was made with the same settings from the same input files (size
    and modification time, or the content's SHA-256 with `content_hash`; see iid.data.inputs).
    A complete, up-to-date store is not written at all (it may sit on read-only media).
    """
    t0 = time.perf_counter()
    store_root = Path(store_root)
    by_key = {r.key: r for r in records}
    datasets = sorted({r.dataset for r in records})
    for ds in datasets:
        sweep_temporaries(store_root, ds)
    tasks, done = [], 0
    for r in records:
        src = by_key.get(r.source_key) if r.source_key else None
        fp = cfg.fingerprint(r, src)
        inputs = states(record_inputs(r, src, cfg), content_hash)
        meta = read_meta(shard_path(store_root, r))
        if meta is not None and meta.get("fingerprint") == fp and same_inputs(meta.get("inputs"), inputs, content_hash):
            done += 1
            continue
        tasks.append((r, src, cfg, str(store_root), fp, inputs))
    for ds in sorted({t[0].dataset for t in tasks}):
        check_writable(store_root / ds)  # one line before any work, e.g. read-only media
    if any(is_video_file(t[0].path) for t in tasks):
        get_backend(cfg.landmarks)  # fail fast (one line) before any worker starts, e.g. dlib missing
    try:
        for _ in _progress(_run(tasks, workers), len(tasks), progress, f"prepare {'+'.join(datasets)}"):
            pass
    except OSError as err:  # a write the writer did not name (it turns its own into StoreWriteError)
        raise store_error(err, store_root) from None
    rows: dict[str, int] = {}
    for ds in datasets:
        ds_recs = [r for r in records if r.dataset == ds]
        for split in sorted({r.split for r in ds_recs}):
            rows[f"{ds}/{split}"] = pack_split(
                store_root, ds, split, [r for r in ds_recs if r.split == split], cfg.store_size
            )
        write_manifest(store_root, ds, ds_recs)
    statuses = Counter()
    for r in records:
        meta = read_meta(shard_path(store_root, r))
        statuses[meta["manifest"]["status"] if meta else "not_processed"] += 1
    return {
        "datasets": datasets,
        "store_root": str(store_root),
        "videos": len(records),
        "processed": len(tasks),
        "skipped_done": done,
        "status": dict(sorted(statuses.items())),
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def prepare_dataset(
    reader: str,
    root: str | Path,
    store_root: str | Path,
    *,
    methods: Sequence[str] | None = None,
    compression: str | None = "c23",
    frames: int = 32,
    landmarks: str = "dlib",
    store_size: int = 256,
    face_scale: float = 1.0,
    workers: int = 1,
    progress: bool = True,
    content_hash: bool = False,
    **reader_opts: object,
) -> dict:
    """Read the raw layout with reader `reader` and build its frame store under `store_root`.

    `content_hash`: compare input files by SHA-256 instead of size and modification time."""
    if frames < 1 or store_size < 224:
        raise UserError(f"prepare needs frames >= 1 and store_size >= 224, got {frames}, {store_size}")
    opts = {k: v for k, v in reader_opts.items() if v is not None}
    if methods is not None:
        opts["methods"] = list(methods)
    if compression:
        opts["compression"] = compression
    records = get_reader(reader)(root, **opts)
    if not records:
        raise UserError(f"no videos found by reader {reader!r} at {root}")
    cfg = ExtractConfig(frames=int(frames), landmarks=landmarks, store_size=int(store_size),
                        face_scale=float(face_scale))  # fmt: skip
    return prepare_records(records, store_root, cfg, workers=int(workers), progress=progress,
                           content_hash=bool(content_hash))  # fmt: skip
