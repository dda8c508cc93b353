"""`prepare` end to end on tiny FF++ / DeepfakeBench fixtures with oracle landmarks (no dlib needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import iid.data.preparation as prep
from iid.data.faces import template
from iid.data.store import FrameStore

sys.path.insert(0, str(Path(__file__).parent))
from face_fixture import face_video, procedural_face_68  # noqa: E402


@pytest.fixture(scope="module")
def ffpp_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ffpp")
    splits = {"train": [["000", "001"]], "val": [], "test": [["002", "003"]]}
    for s, pairs in splits.items():
        (root / "splits").mkdir(exist_ok=True)
        (root / "splits" / f"{s}.json").write_text(json.dumps(pairs))
    orig = root / "original_sequences/youtube/c23/videos"
    fake = root / "manipulated_sequences/Deepfakes/c23/videos"
    # originals encode their frame number as brightness; source 000 is longer than its fake
    face_video(orig / "000.mp4", n=14, level=10, step=15)
    face_video(orig / "001.mp4", level=100)
    face_video(orig / "002.mp4", level=100)
    # 003 original is missing: fake 003_002 keeps its record without a source
    face_video(fake / "000_001.mp4", level=200)
    face_video(fake / "003_002.mp4", level=200)
    fake.joinpath("001_000.mp4").write_bytes(b"not a video" * 50)  # corrupt
    face_video(fake / "002_003.mp4", level=200)
    return root


def run(root, store, **kw):
    kw = {"frames": 4, "landmarks": "oracle", "progress": False, **kw}
    return prep.prepare_dataset("ffpp", root, store, **kw)


def manifest(store) -> dict[str, dict]:
    lines = (Path(store) / "ffpp" / "manifest.jsonl").read_text().splitlines()
    return {d["key"]: d for d in map(json.loads, lines)}


def test_store_format_pairs_and_manifest(ffpp_root, tmp_path):
    summary = run(ffpp_root, tmp_path / "s")
    assert summary["status"] == {"missing_source": 1, "ok": 5, "unreadable": 1}
    m = manifest(tmp_path / "s")
    assert m["ffpp/Deepfakes/001_000"]["status"] == "unreadable"
    assert m["ffpp/Deepfakes/003_002"]["status"] == "missing_source"
    assert m["ffpp/Deepfakes/003_002"]["frames_written"] == 4
    # a fake and its source use identical frame indices: the fake's equal-interval ones (0,3,6,9 of 10)
    assert m["ffpp/Deepfakes/000_001"]["frame_indices"] == [0, 3, 6, 9]
    assert m["ffpp/real/000"]["frame_indices"] == [0, 4, 9, 13]

    st = FrameStore(tmp_path / "s", "ffpp", "train")
    d = st.path
    frames, sources = np.load(d / "frames.npy"), np.load(d / "sources.npy")
    masks, lms = np.load(d / "masks.npy"), np.load(d / "landmarks.npy")
    index = json.loads((d / "index.json").read_text())
    assert frames.shape[1:] == (256, 256, 3) and masks.shape[1:] == (256, 256) and lms.shape[1:] == (68, 2)
    assert set(np.unique(masks)) <= {0, 1}
    rows = [i for i, r in enumerate(index) if r["key"] == "ffpp/Deepfakes/000_001"]
    assert [index[i]["frame"] for i in rows] == [0, 3, 6, 9] and all(index[i]["has_source"] for i in rows)
    for i in rows:  # the source canvas shows source frame f (brightness 10 + 15 f) at the same place
        f = index[i]["frame"]
        assert abs(float(sources[i, 40:60, 100:120].mean()) - (10 + 15 * f)) < 6
        assert abs(float(frames[i, 40:60, 100:120].mean()) - 200) < 6
    real_rows = [i for i, r in enumerate(index) if r["label"] == 0]
    assert not sources[real_rows].any() and not any(index[i]["has_source"] for i in real_rows)
    # landmarks on the canvas: eye centres near the template's
    eyes = np.stack([lms[:, 36:42].mean(1), lms[:, 42:48].mean(1)], 1)
    assert np.abs(eyes - template(256)[:2]).max() < 6
    # hull mask covers the landmarks
    x, y = np.round(lms[0, 30]).astype(int)
    assert masks[0, y, x] == 1
    test = json.loads((tmp_path / "s/ffpp/test/index.json").read_text())
    assert {r["has_source"] for r in test if r["key"] == "ffpp/Deepfakes/003_002"} == {False}
    videos = json.loads((tmp_path / "s/ffpp/test/videos.json").read_text())
    assert {v["video_id"] for v in videos} == {"002", "003_002", "002_003"}


def _snapshot(store: Path) -> dict:
    out = {}
    for p in sorted(store.rglob("*")):
        if p.is_file() and ".shards" not in p.parts:
            out[str(p.relative_to(store))] = p.read_bytes()
    return out


def test_interrupted_run_resumes_to_same_store(ffpp_root, tmp_path, monkeypatch):
    full = tmp_path / "full"
    run(ffpp_root, full)
    part = tmp_path / "part"
    real = prep.process_one
    calls = []

    def dying(task):
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed midway
        calls.append(task[0].key)
        return real(task)

    monkeypatch.setattr(prep, "process_one", dying)
    with pytest.raises(KeyboardInterrupt):
        run(ffpp_root, part)
    monkeypatch.setattr(prep, "process_one", real)
    assert not list(part.rglob("*.tmp"))
    summary = run(ffpp_root, part)
    assert summary["skipped_done"] == 3 and summary["processed"] == 4
    assert _snapshot(part) == _snapshot(full)
    again = run(ffpp_root, part)
    assert again["processed"] == 0 and _snapshot(part) == _snapshot(full)


def test_cli_workers_matches_api(ffpp_root, python_m, tmp_path):
    api = tmp_path / "api"
    run(ffpp_root, api)
    cli = tmp_path / "cli"
    cmd = ["data=ffpp", f"data.root={ffpp_root}", f"data.store_root={cli}",
           "data.methods=[Deepfakes]", "data.landmarks=oracle", "data.frames=4", "prepare.workers=2",
           "prepare.progress=false"]  # fmt: skip
    r = python_m("iid.prepare", cmd, cwd=tmp_path, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _snapshot(cli) == _snapshot(api)
    bad = python_m("iid.prepare", [cmd[0], f"data.root={tmp_path}/none"], cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and bad.stderr.startswith("error:")


def test_deepfakebench_folders(tmp_path):
    root = tmp_path / "dfb"
    data = {"FaceForensics++": {"FF-real": {"train": {"c23": {}}}, "FF-DF": {"train": {"c23": {}}}}}
    for vid, sub, key, level in [("000", "original_sequences/youtube", "FF-real", 50),
                                 ("000_001", "manipulated_sequences/Deepfakes", "FF-DF", 200)]:  # fmt: skip
        frames = []
        for idx in range(0, 50, 5):
            f = root / "FaceForensics++" / sub / "c23/frames" / vid / f"{idx:03d}.png"
            f.parent.mkdir(parents=True, exist_ok=True)
            img = np.full((128, 128, 3), level, np.uint8)
            cv2.imwrite(str(f), img)
            lm = root / "FaceForensics++" / sub / "c23/landmarks" / vid / f"{idx:03d}.npy"
            lm.parent.mkdir(parents=True, exist_ok=True)
            lm81 = np.concatenate([procedural_face_68((64.0, 55.0), 32.0), np.zeros((13, 2), np.float32)])
            np.save(lm, lm81)
            frames.append(str(f.relative_to(root)))
        data["FaceForensics++"][key]["train"]["c23"][vid] = {"label": key, "frames": frames}
    (root / "FF.json").write_text(json.dumps(data))
    summary = prep.prepare_dataset("deepfakebench", root, tmp_path / "s", frames=4, progress=False)
    assert summary["status"] == {"ok": 2}
    d = tmp_path / "s/ffpp/train"
    index = json.loads((d / "index.json").read_text())
    fake = [r for r in index if r["label"] == 1]
    assert [r["frame"] for r in fake] == [0, 15, 30, 45] and all(r["has_source"] for r in fake)
    src = np.load(d / "sources.npy")[[i for i, r in enumerate(index) if r["label"] == 1]]
    assert abs(float(src[:, 100:150, 100:150].mean()) - 50) < 3


@pytest.fixture
def synth(request):
    try:
        return Path(request.getfixturevalue("synthetic_root"))
    except pytest.FixtureLookupError:
        pytest.skip("synthetic_root fixture (tests/conftest.py, iid.synth) not available yet")


def test_synthetic_benchmark_all_layouts(synth, tmp_path):
    from iid.data.sources.celebdf import read_test_list

    store = tmp_path / "s"
    for reader, sub in [("ffpp", "FaceForensics++"), ("celebdf", "Celeb-DF-v2"), ("dfdc", "DFDC")]:
        s = prep.prepare_dataset(reader, synth / sub, store, frames=3, landmarks="oracle", progress=False)
        assert set(s["status"]) == {"ok"}, s
    for ds, split in [("ffpp", "train"), ("ffpp", "test"), ("celebdf", "train"), ("celebdf", "test"), ("dfdc", "test")]:
        FrameStore(store, ds, split)  # opens: the format matches the reader's
    idx = json.loads((store / "ffpp/train/index.json").read_text())
    assert all(r["has_source"] for r in idx if r["label"] == 1)
    test_names = {Path(p).stem for p in read_test_list(synth / "Celeb-DF-v2")}
    for split in ("train", "val"):
        f = store / "celebdf" / split / "videos.json"
        if f.exists():
            assert not {v["video_id"] for v in json.loads(f.read_text())} & test_names
