"""Writes the frame store of docs/interfaces.md: per-video shards (atomic, resumable), then packed splits.

Layout under `<store_root>/<dataset>/`:
  .shards/<split>/<method>/<video_id>.npz   one per processed video (arrays + a JSON `meta` string)
  <split>/{frames,sources,masks,landmarks}.npy, index.json, videos.json   the packed store
  <split>/.pack.json                        what the split was packed from (a re-run skips an up-to-date one)
  manifest.jsonl                            per video: what happened in prepare

A shard is written to a temporary name and renamed, so a killed run leaves only complete shards; a
re-run skips every shard whose fingerprint and inputs match. Packing streams the shards into `.npy`
files with plain sequential writes, in sorted key order, so the packed store depends only on the
shards, not on the order or the number of runs that made them. A split whose shards did not change is
not rewritten, and an unchanged manifest neither, so a complete store can be re-checked on read-only
media.

Writes fail as one `StoreWriteError` line (read-only folder, a file where a folder should be, full
disk), never a traceback or a crash: free space is checked before packing, and packing writes its
files sequentially (a memory map of a sparse file kills the process with SIGBUS when the disk fills).
Temporaries carry `~<host>~<pid>~` in their names; those of processes that no longer run are swept.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from iid.data.records import VideoRecord
from iid.errors import UserError

log = logging.getLogger(__name__)

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


# ----------------------------------------------------------------------------- write errors


class StoreWriteError(UserError):
    """The frame store cannot be written (read-only, not a folder, disk full): one line, exit 2."""


def store_error(err: OSError, where: str | Path) -> StoreWriteError:
    """One line for an OS error while writing the store at `where`, saying what to do."""
    code = getattr(err, "errno", None)
    name = err.filename or where
    if code in (errno.ENOSPC, errno.EDQUOT):
        why = "the disk is full"
        todo = "free space or set data.store_root to a folder on a larger disk"
    elif code == errno.EROFS:
        why = f"{name} is on a read-only file system"
        todo = "set data.store_root to a writable folder"
    elif code in (errno.EACCES, errno.EPERM):
        why = f"permission denied on {name}"
        todo = "set data.store_root to a folder you can write"
    elif code in (errno.ENOTDIR, errno.EEXIST) or isinstance(err, (NotADirectoryError, FileExistsError)):
        why = f"{name} (or a folder above it) is a file, not a folder"
        todo = "set data.store_root to a folder"
    else:
        why = (err.strerror or str(err)).replace("\n", " ")
        todo = "check the folder"
    return StoreWriteError(f"cannot write the frame store at {where}: {why}; {todo}")


def check_writable(folder: Path) -> None:
    """Fail before any work when `folder` cannot be created or written (one line, nothing lost)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".probe{_tag()}", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise store_error(err, folder) from None


# ----------------------------------------------------------------------------- temporaries


def _tag() -> str:
    """`~<host>~<pid>~`: names a temporary's writer, so that a later run can tell a dead one's debris."""
    return f"~{socket.gethostname()}~{os.getpid()}~"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists
        return True
    return True


def _stale(path: Path, max_age_s: float = 86400.0) -> bool:
    """A temporary whose writer is gone: a dead process of this machine, another machine's after a
    day, or an untagged one (written by versions that did not tag them)."""
    parts = path.name.split("~")
    if len(parts) < 4:
        return True
    host, pid = parts[1], parts[2]
    if host == socket.gethostname() and pid.isdigit():
        return int(pid) != os.getpid() and not _pid_alive(int(pid))
    try:
        return time.time() - path.lstat().st_mtime > max_age_s
    except OSError:
        return False


def sweep_temporaries(store_root: str | Path, dataset: str) -> list[Path]:
    """Remove the debris of killed runs in `<store_root>/<dataset>`: half-packed splits
    (`.<split>.packing*`), replaced splits not yet deleted (`.<split>.old*`), half-written shards and
    manifests (`*.tmp`). Best effort (read-only media: nothing is removed). Returns what was removed."""
    ds = Path(store_root) / dataset
    if not ds.is_dir():
        return []
    cands = [p for p in ds.iterdir() if p.name.startswith(".") and (".packing" in p.name or ".old" in p.name)]
    cands += [p for p in ds.glob("*.tmp")]
    shards = ds / ".shards"
    if shards.is_dir():
        cands += list(shards.rglob("*.tmp"))
    removed = []
    for p in cands:
        if not _stale(p):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            pass
    if removed:
        log.info("removed %d temporaries left by interrupted runs in %s", len(removed), ds)
    return removed


# ----------------------------------------------------------------------------- shards


def write_shard(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Atomically write one video's rows and its manifest entry (tmp file in the same folder + rename)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + _tag(), suffix=".tmp")
    except OSError as err:
        raise store_error(err, path.parent) from None
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise store_error(err, path.parent) from None
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
    tmp = path.with_name(path.name + _tag() + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- packing

PACK_STAMP = ".pack.json"
_PACK_FORMAT = 2  # bump when the packed layout changes: every split is repacked once


def _row_shapes(size: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    return {
        "frames": ((size, size, 3), np.dtype(np.uint8)),
        "sources": ((size, size, 3), np.dtype(np.uint8)),
        "masks": ((size, size), np.dtype(np.uint8)),
        "landmarks": ((68, 2), np.dtype(np.float32)),
    }


def pack_bytes(rows: int, videos: int, size: int) -> int:
    """Bytes a packed split of `rows` frames and `videos` videos takes (arrays + JSON, generous)."""
    row = sum(int(np.prod(shape)) * dt.itemsize for shape, dt in _row_shapes(size).values())
    return rows * (row + 256) + videos * 2048 + 4 * 4096


def free_bytes(folder: Path) -> int:
    """Free bytes for an unprivileged writer on the file system holding `folder` (or its nearest parent)."""
    p = Path(folder)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _pack_stamp(records: list[tuple[VideoRecord, dict]], size: int) -> str:
    blob = json.dumps([_PACK_FORMAT, size, [[r.to_dict(), m] for r, m in records]], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()


def packed_is_current(final: Path, stamp: str) -> bool:
    from iid.data.store import FILES

    try:
        return all((final / f).is_file() for f in FILES) and json.loads(
            (final / PACK_STAMP).read_text()
        ).get("stamp") == stamp
    except (OSError, ValueError, AttributeError):
        return False


def pack_split(store_root: Path, dataset: str, split: str, records: Iterable[VideoRecord], size: int) -> int:
    """Pack the shards of `records` (one split) into `<store_root>/<dataset>/<split>/`; returns rows.

    Videos with no rows (unreadable, no face) are in the manifest but not in videos.json. A split
    already packed from the same shards is left as it is (nothing written).
    """
    records = sorted(records, key=lambda r: r.key)
    metas = []
    for r in records:
        meta = read_meta(shard_path(store_root, r))
        if meta is not None and meta["rows"] > 0:
            metas.append((r, meta))
    n = sum(m["rows"] for _, m in metas)
    final = Path(store_root) / dataset / split
    stamp = _pack_stamp(metas, size)
    if packed_is_current(final, stamp):
        return n
    where = final.parent
    need = pack_bytes(n, len(metas), size)
    try:
        where.mkdir(parents=True, exist_ok=True)
        free = free_bytes(where)
    except OSError as err:
        raise store_error(err, where) from None
    if free < need:  # the old split stays until the new one is complete: the new one needs room of its own
        raise StoreWriteError(
            f"not enough free space to pack {dataset}/{split} at {where}: it needs {_fmt_bytes(need)}, "
            f"{_fmt_bytes(free)} free; free space or set data.store_root to a folder on a larger disk "
            "(the processed videos are kept: the re-run only packs)"
        )
    try:
        tmp = Path(tempfile.mkdtemp(dir=where, prefix=f".{split}.packing{_tag()}"))
    except OSError as err:
        raise store_error(err, where) from None
    old = where / f".{split}.old{_tag()}"
    try:
        _write_arrays(tmp, store_root, metas, n, size)
        index, videos = [], []
        for r, meta in metas:
            for fi, hs in zip(meta["frame_index"], meta["has_source"]):
                index.append(
                    {"key": r.key, "frame": int(fi), "label": r.label, "identity": r.identity,
                     "has_source": bool(hs)}
                )  # fmt: skip
            videos.append(r.to_dict())
        (tmp / "index.json").write_text(json.dumps(index))
        (tmp / "videos.json").write_text(json.dumps(videos, indent=0))
        (tmp / PACK_STAMP).write_text(json.dumps({"stamp": stamp, "rows": n, "videos": len(videos)}))
        # swap in: the old split (if any) stays complete until the new one is in place
        if final.exists():
            os.replace(final, old)
        try:
            os.replace(tmp, final)
        except OSError:
            if old.exists() and not final.exists():
                os.replace(old, final)  # put the old split back
            raise
        shutil.rmtree(old, ignore_errors=True)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise store_error(err, where) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n


def _write_arrays(tmp: Path, store_root: Path, metas: list[tuple[VideoRecord, dict]], n: int, size: int) -> None:
    """Stream the shards' arrays into `tmp/<name>.npy`, and their row columns into `meta` (in place)."""
    shapes = _row_shapes(size)
    files = {}
    try:
        for name, (shape, dt) in shapes.items():
            f = files[name] = open(tmp / f"{name}.npy", "wb")  # noqa: SIM115 (closed below)
            header = {"descr": np.lib.format.dtype_to_descr(dt), "fortran_order": False, "shape": (n, *shape)}
            np.lib.format.write_array_header_1_0(f, header)
        for r, meta in metas:
            path = shard_path(store_root, r)
            with np.load(path, allow_pickle=False) as z:
                for name, (shape, dt) in shapes.items():
                    a = z[name]
                    if a.shape != (meta["rows"], *shape) or a.dtype != dt:
                        raise StoreWriteError(
                            f"shard {path} holds {name} {a.dtype}{a.shape}, expected {meta['rows']} rows of "
                            f"{dt}{shape}: delete it and re-run prepare"
                        )
                    write_rows(files[name], a)
                meta["frame_index"] = z["frame_index"].tolist()
                meta["has_source"] = z["has_source"].tolist()
    finally:
        for f in files.values():
            f.close()


def write_rows(f, rows: np.ndarray) -> None:
    """Append rows to an open .npy file (a plain write: a full disk is an OSError, not a SIGBUS)."""
    f.write(memoryview(np.ascontiguousarray(rows)).cast("B"))


def write_manifest(store_root: Path, dataset: str, records: Iterable[VideoRecord]) -> Path:
    """`<store_root>/<dataset>/manifest.jsonl`: one JSON line per video (sorted by key) from its shard.
    Left untouched when its content would not change."""
    lines = []
    for r in sorted(records, key=lambda r: r.key):
        meta = read_meta(shard_path(store_root, r))
        entry = {"key": r.key, "split": r.split}
        entry.update(meta["manifest"] if meta else {"status": "not_processed"})
        lines.append(json.dumps(entry, sort_keys=True))
    path = Path(store_root) / dataset / "manifest.jsonl"
    text = "\n".join(lines) + ("\n" if lines else "")
    try:
        if path.is_file() and path.read_text() == text:
            return path
    except OSError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_text(path, text)
    except OSError as err:
        raise store_error(err, path.parent) from None
    return path
