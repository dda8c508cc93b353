"""DeepfakeBench folders: every JSON entry named in the manifest, Windows JSONs, one store per JSON data
set, and the FF++ -> Celeb-DF/DFDC protocol set up by config alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import python_cli
from iid.data.preparation import prepare_dataset
from iid.data.sources import get_reader
from iid.data.sources.deepfakebench import store_name
from iid.data.store import FrameStore, store_exists

sys.path.insert(0, str(Path(__file__).parent))
from dfb_fixture import ffpp_dfb, flat_dfb  # noqa: E402


def manifest(store: Path, ds: str) -> dict[str, dict]:
    lines = (store / ds / "manifest.jsonl").read_text().splitlines()
    return {d["key"]: d for d in map(json.loads, lines)}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_windows_json_paths_resolve(tmp_path):
    root = tmp_path / "dfb"
    ffpp_dfb(root, prefix="D:\\work\\DeepfakeBench\\datasets\\rgb", windows=True)
    recs = get_reader("deepfakebench")(root, json_file="FaceForensics++")
    assert len(recs) == 6 and all(Path(r.path).is_dir() for r in recs)
    fake = next(r for r in recs if r.key == "ffpp/Deepfakes/000_001")
    assert Path(fake.path).parts[-2:] == ("frames", "000_001") and fake.source_key == "ffpp/real/000"
    # relative Windows paths (".\\datasets\\...") too
    rel = tmp_path / "rel"
    ffpp_dfb(rel, prefix=".", windows=True)
    assert all(Path(r.path).is_dir() for r in get_reader("deepfakebench")(rel, json_file="FaceForensics++"))


def test_missing_folder_and_empty_frame_list_are_named_in_the_manifest(tmp_path):
    root = tmp_path / "dfb"
    extra = {"entries": [
        ("FF-real", "train", "004", {"label": "FF-real", "frames": [
            "/elsewhere/FaceForensics++/original_sequences/youtube/c23/frames/004/000.png"]}),  # never extracted
        ("FF-DF", "train", "005_004", {"label": "FF-DF", "frames": []}),  # listed without frames
    ]}  # fmt: skip
    ffpp_dfb(root, prefix="/elsewhere", extra=extra)
    store = tmp_path / "s"
    s = prepare_dataset("deepfakebench", root, store, frames=2, json_file="FaceForensics++", progress=False)
    assert s["videos"] == 8 and s["status"] == {"ok": 6, "missing": 2}
    m = manifest(store, "ffpp")
    gone = m["ffpp/real/004"]
    assert gone["status"] == "missing" and "frames/004" in gone["error"] and "not found" in gone["error"]
    empty = m["ffpp/Deepfakes/005_004"]
    assert empty["status"] == "missing" and "lists no frames" in empty["error"]
    packed = {v["video_id"] for f in (store / "ffpp").glob("*/videos.json") for v in json.loads(f.read_text())}
    assert packed == {"000", "001", "000_001", "002", "003", "002_003"}


def test_stores_are_named_after_the_json_data_set(tmp_path):
    assert [store_name(n) for n in ("FaceForensics++", "Celeb-DF-v2", "DFDC", "DFDCP", "UADFV", "DeeperForensics-1.0")] == [
        "ffpp", "celebdf", "dfdc", "dfdc_preview", "uadfv", "deeperforensics_1_0"]  # fmt: skip
    root = tmp_path / "dfb"
    ffpp_dfb(root)
    flat_dfb(root, "Celeb-DF-v2", "CelebDFv2_real", "CelebDFv2_fake", {"id0_0000": 0, "id1_id0_0000": 1})
    store = tmp_path / "s"
    prepare_dataset("deepfakebench", root, store, frames=2, json_file="FaceForensics++", progress=False)
    before = snapshot(store / "ffpp")
    s = prepare_dataset("deepfakebench", root, store, frames=2, json_file=root / "dataset_json/Celeb-DF-v2.json",
                        progress=False)  # fmt: skip
    assert s["datasets"] == ["celebdf"] and s["status"] == {"ok": 2}
    assert snapshot(store / "ffpp") == before  # preparing another JSON leaves FF++ alone
    test = FrameStore(store, "celebdf", "test")
    assert sorted(test.keys) == ["celebdf/CelebDFv2_fake/id1_id0_0000", "celebdf/real/id0_0000"]
    assert FrameStore(store, "ffpp", "train").keys[0].startswith("ffpp/")


@pytest.mark.slow
def test_protocol_train_ffpp_test_celebdf_dfdc_by_config(python_m, tmp_path):
    """`python -m iid.prepare data=deepfakebench data.root=DIR` builds FF++ (all splits) and the Celeb-DF and
    DFDC test stores from their JSONs in one DeepfakeBench folder: the field's standard protocol."""
    root = tmp_path / "dfb"
    ffpp_dfb(root)
    flat_dfb(root, "Celeb-DF-v2", "CelebDFv2_real", "CelebDFv2_fake", {"id0_0000": 0, "id1_id0_0000": 1})
    flat_dfb(root, "DFDC", "DFDC_Real", "DFDC_Fake", {"aaa": 0, "bbb": 1})
    store = tmp_path / "stores"
    cmd = ["data=deepfakebench", f"data.root={root}", f"data.store_root={store}",
           "data.frames=2", "prepare.workers=1", "prepare.progress=false"]  # fmt: skip
    env = {k: v for k, v in python_cli.cli_env().items() if k != "IID_DFB_JSON"}
    r = python_m("iid.prepare", cmd, cwd=tmp_path, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for ds, split in [("ffpp", "train"), ("ffpp", "test"), ("celebdf", "test"), ("dfdc", "test")]:
        assert store_exists(store, ds, split), (ds, split, r.stdout[-2000:])
    assert {v["video_id"] for v in json.loads((store / "dfdc/test/videos.json").read_text())} == {"aaa", "bbb"}
