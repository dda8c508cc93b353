"""What a video's store rows were made from, so that a changed or fixed input file is redone.

A shard records the state of every file its rows came from (the video or frame folder, its landmark
sidecar or landmark folder, the fake's source): size and modification time by default, plus the
content's SHA-256 with `content_hash=True`. A re-run redoes a video when any of them differs, e.g. an
unreadable video that was replaced, a source that appeared, a landmark file that was added.

States: a file is `{"size": bytes, "mtime": ns, ["sha256": hex]}`; a folder is the same over its
files (`size`/`mtime` are digests of the sorted (name, size) and (name, mtime) lists, `sha256` of
names and contents); a path that does not exist is None.

With `content_hash` a shard is current when sizes and hashes match (times are ignored, so a copied
data set with new times is not redone); shards made without hashes are redone once. It reads every
input file completely on every run.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_CHUNK = 1 << 20


def _sha256_file(path: Path, h: hashlib._Hash | None = None) -> hashlib._Hash:
    h = h or hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):  # streamed: videos can be GBs
            h.update(block)
    return h


def file_state(path: str | Path | None, content_hash: bool = False) -> dict | None:
    """The state of a file or folder (see the module doc); None when `path` is empty or absent."""
    if not path:
        return None
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return None
    if not p.is_dir():
        out: dict = {"size": st.st_size, "mtime": st.st_mtime_ns}
        if content_hash:
            out["sha256"] = _sha256_file(p).hexdigest()
        return out
    try:
        entries = sorted((e.name, e.stat()) for e in os.scandir(p) if e.is_file())
    except OSError:
        return None
    names = hashlib.sha1("\n".join(f"{n}\t{s.st_size}" for n, s in entries).encode()).hexdigest()
    times = hashlib.sha1("\n".join(f"{n}\t{s.st_mtime_ns}" for n, s in entries).encode()).hexdigest()
    out = {"size": f"{len(entries)}:{names}", "mtime": times}
    if content_hash:
        h = hashlib.sha256()
        for n, _ in entries:
            h.update(n.encode() + b"\0")
            _sha256_file(p / n, h)
        out["sha256"] = h.hexdigest()
    return out


def states(paths: dict[str, str | Path | None], content_hash: bool = False) -> dict[str, dict | None]:
    """{role: state} for {role: path}."""
    return {role: file_state(p, content_hash) for role, p in sorted(paths.items())}


def same_inputs(recorded: dict | None, now: dict[str, dict | None], content_hash: bool = False) -> bool:
    """Whether the inputs recorded in a shard are the files there now."""
    if not isinstance(recorded, dict) or set(recorded) != set(now):
        return False
    keys = ("size", "sha256") if content_hash else ("size", "mtime")
    for role, cur in now.items():
        old = recorded[role]
        if old is None or cur is None:
            if old is not cur:
                return False
            continue
        if content_hash and "sha256" not in old:
            return False  # made without hashes: nothing to compare the content with
        if any(old.get(k) != cur.get(k) for k in keys):
            return False
    return True
