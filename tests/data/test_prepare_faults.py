"""`prepare` under faults: changed or fixed inputs are redone, a video without landmarks does not stop the
others, and write errors (read-only folder, a file as store root, a full disk, killed packs) end in one
line and lose nothing."""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import iid.data.writer as writer
from iid.data.preparation import prepare_dataset
from iid.errors import UserError

sys.path.insert(0, str(Path(__file__).parent))
from face_fixture import face_video  # noqa: E402


def make_ffpp(root: Path) -> Path:
    """Train: real 000, 001 and fakes 000_001, 001_000 (the latter corrupt); test: real 002."""
    (root / "splits").mkdir(parents=True)
    for split, pairs in {"train": [["000", "001"]], "val": [], "test": [["002", "003"]]}.items():
        (root / "splits" / f"{split}.json").write_text(json.dumps(pairs))
    orig = root / "original_sequences/youtube/c23/videos"
    fake = root / "manipulated_sequences/Deepfakes/c23/videos"
    face_video(orig / "000.mp4", n=6, level=40)
    face_video(orig / "001.mp4", n=6, level=90)
    face_video(orig / "002.mp4", n=6, level=120)
    face_video(fake / "000_001.mp4", n=6, level=200)
    fake.joinpath("001_000.mp4").write_bytes(b"not a video" * 50)
    return root


@pytest.fixture
def raw(tmp_path) -> Path:
    return make_ffpp(tmp_path / "ffpp")


def run(root, store, **kw):
    return prepare_dataset("ffpp", root, store, **{"frames": 3, "landmarks": "oracle", "progress": False, **kw})


def manifest(store) -> dict[str, dict]:
    lines = (Path(store) / "ffpp" / "manifest.jsonl").read_text().splitlines()
    return {d["key"]: d for d in map(json.loads, lines)}


def stat_snapshot(folder: Path) -> dict[str, tuple]:
    """Every path with its inode, size and modification time: equal snapshots mean nothing was written."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def content(store: Path) -> dict[str, bytes]:
    """The packed store and manifest (no shards, no bookkeeping): what readers see."""
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*"))
            if p.is_file() and ".shards" not in p.parts and p.name != writer.PACK_STAMP}  # fmt: skip


VIDEOS = "manipulated_sequences/Deepfakes/c23/videos"


# ----------------------------------------------------------------------------- case 2: inputs


def test_replaced_unreadable_video_is_redone(raw, tmp_path):
    store = tmp_path / "s"
    assert run(raw, store)["status"] == {"ok": 4, "unreadable": 1}
    face_video(raw / VIDEOS / "001_000.mp4", n=6, level=210)  # fixed by the user
    again = run(raw, store)
    assert again["processed"] == 1 and again["status"] == {"ok": 5}
    assert manifest(store)["ffpp/Deepfakes/001_000"]["status"] == "ok"


def test_changed_inputs_redo_their_videos_and_a_moved_data_set_none(raw, tmp_path):
    store = tmp_path / "s"
    run(raw, store)
    side = raw / "original_sequences/youtube/c23/videos/002.landmarks.npy"
    lms = np.load(side)
    np.save(side, lms + 1.0)  # a corrected landmark sidecar: only its video is redone
    assert run(raw, store)["processed"] == 1
    face_video(raw / "original_sequences/youtube/c23/videos/000.mp4", n=6, level=45)  # a replaced source video
    s = run(raw, store)
    assert s["processed"] == 2  # the original and the fake made from it
    moved = tmp_path / "moved"
    shutil.copytree(raw, moved)  # copy2: same sizes and times, other paths
    s = run(moved, store)
    assert s["processed"] == 0 and s["skipped_done"] == 5


def test_content_hash_option(raw, tmp_path):
    store = tmp_path / "s"
    run(raw, store)
    video = raw / VIDEOS / "000_001.mp4"
    st = video.stat()
    data = bytearray(video.read_bytes())
    data[-20:] = bytes(20)  # same size, other content, then the old time put back (e.g. a restore)
    video.write_bytes(bytes(data))
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run(raw, store)["processed"] == 0  # size + time cannot see it: what the hash option is for
    first = run(raw, store, content_hash=True)
    assert first["processed"] == 5  # shards made without hashes are redone once
    assert run(raw, store, content_hash=True)["processed"] == 0
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # only the time changes: same content
    assert run(raw, store, content_hash=True)["processed"] == 0
    data[-20:] = b"x" * 20
    video.write_bytes(bytes(data))
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run(raw, store, content_hash=True)["processed"] == 1


# ----------------------------------------------------------------------------- case 7: oracle landmarks


def test_video_without_landmark_file_is_recorded_and_the_others_go_on(raw, tmp_path):
    store = tmp_path / "s"
    side = raw / "original_sequences/youtube/c23/videos/001.landmarks.npy"
    kept = side.read_bytes()
    side.unlink()
    s = run(raw, store)
    assert s["status"] == {"ok": 3, "no_landmarks": 1, "unreadable": 1}
    m = manifest(store)["ffpp/real/001"]
    assert m["status"] == "no_landmarks" and "001.landmarks.npy" in m["error"] and m["frames_written"] == 0
    side.write_bytes(kept)  # the sidecar appears: that video is redone
    s = run(raw, store)
    assert s["processed"] == 1 and manifest(store)["ffpp/real/001"]["status"] == "ok"


# ----------------------------------------------------------------------------- case 5: writing


def test_complete_store_is_not_rewritten(raw, tmp_path):
    store = tmp_path / "s"
    run(raw, store)
    before = stat_snapshot(store)
    s = run(raw, store)
    assert s["processed"] == 0 and stat_snapshot(store) == before


def test_store_root_that_is_a_file_is_one_line(raw, tmp_path):
    store = tmp_path / "store"
    store.write_text("not a folder")
    with pytest.raises(UserError, match=r"is a file, not a folder; set data.store_root"):
        run(raw, store)
    assert store.read_text() == "not a folder"
    inner = tmp_path / "s"
    inner.mkdir()
    (inner / "ffpp").write_text("x")  # the data set's folder is a file
    with pytest.raises(UserError, match="is a file, not a folder"):
        run(raw, inner)


def test_full_disk_is_checked_before_packing_and_nothing_is_lost(raw, tmp_path, monkeypatch):
    store = tmp_path / "s"
    run(raw, store)
    old = content(store)
    face_video(raw / VIDEOS / "001_000.mp4", n=6, level=210)  # new work for the train split
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=100_000))
    with pytest.raises(UserError, match=r"not enough free space to pack ffpp/train at .*: it needs .* MiB, 97.7 KiB free"):
        run(raw, store)
    assert content(store) == old  # the packed store is as it was
    assert not [p for p in (store / "ffpp").iterdir() if ".packing" in p.name]
    monkeypatch.setattr(shutil, "disk_usage", real)
    s = run(raw, store)
    assert s["processed"] == 0 and s["status"] == {"ok": 5}  # the extracted video was kept: only packing is left
    clean = tmp_path / "clean"
    run(raw, clean)
    assert content(store) == content(clean)


def test_disk_filling_during_packing_is_one_line(raw, tmp_path, monkeypatch):
    store = tmp_path / "s"
    run(raw, store)
    old = content(store)
    face_video(raw / VIDEOS / "001_000.mp4", n=6, level=210)
    calls = []
    real_write = writer.write_rows

    def filling(f, rows):
        calls.append(1)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(f, rows)

    monkeypatch.setattr(writer, "write_rows", filling)
    with pytest.raises(UserError, match=r"cannot write the frame store at .*ffpp: the disk is full; free space"):
        run(raw, store)
    assert content(store) == old and not [p for p in (store / "ffpp").iterdir() if ".packing" in p.name]


def test_stale_temporaries_are_swept(raw, tmp_path):
    store = tmp_path / "s"
    run(raw, store)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = writer.socket.gethostname()
        ds = store / "ffpp"
        debris = [ds / f".train.packing~{host}~{dead.pid}~abc", ds / f".test.old~{host}~{dead.pid}~",
                  ds / ".train.packing.k2j3h4"]  # the last: untagged, from versions that never swept  # fmt: skip
        live = ds / f".train.packing~{host}~{alive.pid}~xyz"  # a concurrent run's: left alone
        for d in [*debris, live]:
            d.mkdir()
            (d / "frames.npy").write_bytes(b"\0" * 1000)
        shard_tmp = ds / ".shards/train/real" / f"000~{host}~{dead.pid}~q1.tmp"
        shard_tmp.write_bytes(b"half")
        assert run(raw, store)["processed"] == 0
        assert not any(d.exists() for d in [*debris, shard_tmp]) and live.is_dir()
    finally:
        alive.kill()
        alive.wait()


# ----------------------------------------------------------------------------- real file systems
# root ignores permission bits, so these use what binds root too: a read-only mount (EROFS), a tmpfs
# that fills, and a child without CAP_DAC_OVERRIDE for permission bits. Skipped where the kernel or
# the sandbox allows none of them.


def _mount_ns() -> list[str] | None:
    """`unshare` arguments for a private mount namespace (as root, or as a user mapped to root)."""
    if shutil.which("unshare") is None:
        return None
    for args in (["unshare", "-m"], ["unshare", "-rm"]):
        try:
            if subprocess.run([*args, "true"], capture_output=True, timeout=20).returncode == 0:
                return args
        except (OSError, subprocess.TimeoutExpired):
            pass
    return None


PREPARE = (
    "import sys; from iid.data.preparation import prepare_dataset; from iid.errors import exit_on_user_error; "
    "exit_on_user_error(prepare_dataset)('ffpp', sys.argv[1], sys.argv[2], frames=3, landmarks='oracle', "
    "progress=False); print('prepared')"
)


def _in_ns(ns: list[str], setup: str, args: list[str], pre: str = "") -> subprocess.CompletedProcess:
    py = shlex.join([sys.executable, "-c", pre + PREPARE, *args])
    return subprocess.run([*ns, "sh", "-c", f"{setup} && exec {py}"], capture_output=True, text=True, timeout=300)


def _one_error_line(r: subprocess.CompletedProcess, match: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], r.stderr[-3000:]


def test_read_only_media(raw, tmp_path):
    ns = _mount_ns()
    if ns is None:
        pytest.skip("no private mount namespace here (unshare)")
    store = tmp_path / "s"
    run(raw, store)
    ro = f"mount --bind {store} {store} && mount -o remount,bind,ro {store}"
    r = _in_ns(ns, ro, [str(raw), str(store)])
    assert r.returncode == 0 and "prepared" in r.stdout, r.stderr[-3000:]  # a complete store: nothing to write
    face_video(raw / VIDEOS / "001_000.mp4", n=6, level=210)
    r = _in_ns(ns, ro, [str(raw), str(store)])
    _one_error_line(r, "read-only file system; set data.store_root to a writable folder")


def test_read_only_folder(raw, tmp_path):
    store = tmp_path / "s"
    run(raw, store)
    face_video(raw / VIDEOS / "001_000.mp4", n=6, level=210)
    for d in [store, *store.rglob("*")]:
        if d.is_dir():
            d.chmod(0o555)
    cmd = [sys.executable, "-c", PREPARE, str(raw), str(store)]
    if os.geteuid() == 0:  # root writes through permission bits unless it drops this capability
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permission bits cannot be made to bind")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    finally:
        for d in [store, *store.rglob("*")]:
            if d.is_dir():
                d.chmod(0o755)
    _one_error_line(r, "permission denied on")


def test_real_full_disk(raw, tmp_path):
    """A small tmpfs: the free-space check stops the pack (which used to die by SIGBUS, exit 135), and
    when the check is fooled the disk filling mid-write is still one line."""
    ns = _mount_ns()
    if ns is None:
        pytest.skip("no private mount namespace here (unshare)")
    probe = tmp_path / "probe"
    run(raw, probe)
    shards = sum(p.stat().st_size for p in (probe / "ffpp/.shards").rglob("*.npz"))
    size_kib = (shards + writer.pack_bytes(12, 4, 256) // 2) // 1024  # the shards fit, the packed train split not
    store = tmp_path / "tmpfs"
    store.mkdir()
    mount = f"mount -t tmpfs -o size={size_kib}k iidtest {store}"
    r = _in_ns(ns, mount, [str(raw), str(store)])
    _one_error_line(r, "not enough free space to pack ffpp/")
    lie = ("import shutil; _du = shutil.disk_usage; "
           "shutil.disk_usage = lambda p: _du(p)._replace(free=1 << 40); ")  # fmt: skip
    r = _in_ns(ns, mount, [str(raw), str(store)], pre=lie)
    _one_error_line(r, "the disk is full")
