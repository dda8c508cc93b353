"""Dataset readers on tiny fixtures in the real on-disk layouts (files need not decode here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from iid.data.checks import check_records, shared_identities
from iid.data.records import VideoRecord
from iid.data.sources import READERS, get_reader
from iid.errors import UserError


def touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"\0")
    return p


def make_ffpp(root: Path, methods=("Deepfakes", "FaceSwap"), comp="c23") -> Path:
    pairs = {"train": [["000", "001"], ["002", "003"]], "val": [["004", "005"]], "test": [["006", "007"]]}
    for split, ps in pairs.items():
        touch(root / "splits" / f"{split}.json").write_text(json.dumps(ps))
        for a, b in ps:
            for v in (a, b):
                touch(root / f"original_sequences/youtube/{comp}/videos/{v}.mp4")
            for m in methods:
                for v in (f"{a}_{b}", f"{b}_{a}"):
                    touch(root / f"manipulated_sequences/{m}/{comp}/videos/{v}.mp4")
    touch(root / "manipulated_sequences/Deepfakes/masks/videos/000_001.mp4")
    return root


def test_ffpp_records_pairs_splits_identities(tmp_path):
    root = make_ffpp(tmp_path / "ff")
    recs = get_reader("ffpp")(root)
    by = {r.key: r for r in recs}
    assert len(recs) == 8 + 2 * 8
    f = by["ffpp/Deepfakes/001_000"]
    assert (f.label, f.split, f.identities, f.source_key) == (1, "train", ("001", "000"), "ffpp/real/001")
    assert f.source_key in by and by[f.source_key].split == f.split
    assert by["ffpp/Deepfakes/000_001"].mask_path.endswith("masks/videos/000_001.mp4")
    assert by["ffpp/FaceSwap/000_001"].mask_path is None
    assert by["ffpp/real/006"].split == "test" and by["ffpp/FaceSwap/007_006"].split == "test"
    assert {r.split for r in recs} == {"train", "val", "test"}
    # methods subset; keys never merge methods sharing a pair id
    sub = get_reader("ffpp")(root, methods=["FaceSwap"])
    assert {r.method for r in sub} == {"real", "FaceSwap"}
    with pytest.raises(UserError, match="NeuralTextures"):
        get_reader("ffpp")(root, methods=["NeuralTextures"])


def test_wrong_roots_give_one_line(tmp_path):
    for name in READERS:
        with pytest.raises(UserError) as e:
            get_reader(name)(tmp_path)
        assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="expected original_sequences/youtube/c23/videos"):
        get_reader("ffpp")(tmp_path)
    with pytest.raises(UserError, match="not a folder"):
        get_reader("ffpp")(tmp_path / "nope")


def make_celebdf(root: Path) -> Path:
    for i in range(6):
        for k in range(2):
            touch(root / f"Celeb-real/id{i}_000{k}.mp4")
            touch(root / f"Celeb-synthesis/id{i}_id{(i + 1) % 6}_000{k}.mp4")
    touch(root / "Celeb-synthesis/id9_id1_0003.mp4")  # its Celeb-real source does not exist
    for n in range(3):
        touch(root / f"YouTube-real/0000{n}.mp4")
    test = ["1 Celeb-real/id0_0000.mp4", "0 Celeb-synthesis/id0_id1_0000.mp4", "1 YouTube-real/00001.mp4",
            "1 Celeb-real/id3_0001.mp4"]  # fmt: skip
    touch(root / "List_of_testing_videos.txt").write_text("\n".join(test) + "\n")
    return root


def test_celebdf_test_list_identities_sources_and_val(tmp_path):
    root = make_celebdf(tmp_path / "cdf")
    recs = get_reader("celebdf")(root)
    by = {r.key: r for r in recs}
    test_keys = {r.key for r in recs if r.split == "test"}
    assert test_keys == {"celebdf/real/id0_0000", "celebdf/synthesis/id0_id1_0000", "celebdf/real/00001",
                         "celebdf/real/id3_0001"}  # fmt: skip
    # no test video in train (nor val), by key and by file
    train_files = {Path(r.path).name for r in recs if r.split != "test"}
    assert not train_files & {Path(by[k].path).name for k in test_keys}
    f = by["celebdf/synthesis/id2_id3_0001"]
    assert f.identities == ("id2", "id3") and f.source_key == "celebdf/real/id2_0001"
    assert by["celebdf/synthesis/id9_id1_0003"].source_key is None
    assert by["celebdf/real/00002"].identities == ("00002",)
    # deterministic identity-disjoint val split from the train part
    val = [r for r in recs if r.split == "val"]
    assert val and not {r.identity for r in val} & {r.identity for r in recs if r.split == "train"}
    assert [r.key for r in get_reader("celebdf")(root) if r.split == "val"] == [r.key for r in val]
    assert {r.dataset for r in get_reader("celebdf_v1")(root)} == {"celebdf_v1"}


def test_dfdc_and_preview(tmp_path):
    root = tmp_path / "dfdc"
    touch(root / "aaa.mp4"), touch(root / "bbb.mp4")
    touch(root / "labels.csv").write_text("filename,label\naaa.mp4,1\nbbb.mp4,0\nmissing.mp4,1\n")
    recs = get_reader("dfdc")(root)
    assert [(r.key, r.label, r.split) for r in recs] == [("dfdc/fake/aaa", 1, "test"), ("dfdc/real/bbb", 0, "test")]

    prev = tmp_path / "dfdcp"
    info = {}
    for s in range(4):
        rel_r = f"original_videos/{s}/{s}_00{s}.mp4"
        rel_f = f"method_A/{s}/{s}_A/{s}_A_00{s}.mp4"
        touch(prev / rel_r), touch(prev / rel_f)
        split = "test" if s == 3 else "train"
        info[rel_r] = {"label": "real", "set": split}
        info[rel_f] = {"label": "fake", "set": split}
    touch(prev / "dataset.json").write_text(json.dumps(info))
    recs = get_reader("dfdc_preview")(prev)
    by = {r.key: r for r in recs}
    assert by["dfdc_preview/method_A/2_A_002"].label == 1 and by["dfdc_preview/real/3_003"].split == "test"
    assert by["dfdc_preview/method_A/2_A_002"].identity == "2"
    assert {r.split for r in recs} == {"train", "val", "test"}


def make_dfb(root: Path, machine_prefix="/data/DeepfakeBench/datasets/rgb") -> Path:
    """DeepfakeBench layout: FaceForensics++/<...>/<comp>/frames/<vid>/<idx>.png, landmarks/, masks/ + JSON
    whose frame paths are absolute paths of another machine (resolved by suffix)."""
    ff = root / "FaceForensics++"
    data = {"FaceForensics++": {"FF-real": {}, "FF-DF": {}}}
    for split, (a, b) in {"train": ("000", "001"), "test": ("002", "003")}.items():
        data["FaceForensics++"]["FF-real"][split] = {"c23": {}}
        data["FaceForensics++"]["FF-DF"][split] = {"c23": {}}
        for vid, sub, key in [(a, "original_sequences/youtube", "FF-real"), (b, "original_sequences/youtube", "FF-real"),
                              (f"{a}_{b}", "manipulated_sequences/Deepfakes", "FF-DF")]:  # fmt: skip
            frames = []
            for idx in (0, 10, 20):
                f = touch(ff / sub / "c23" / "frames" / vid / f"{idx:03d}.png")
                np.save(touch(ff / sub / "c23" / "landmarks" / vid / f"{idx:03d}.npy"), np.zeros((81, 2)))
                frames.append(f"{machine_prefix}/{f.relative_to(root)}")
            data["FaceForensics++"][key][split]["c23"][vid] = {"label": key, "frames": frames}
    touch(root / "FaceForensics++.json").write_text(json.dumps(data))
    return root


def test_deepfakebench_ff_form(tmp_path):
    root = make_dfb(tmp_path / "dfb")
    recs = get_reader("deepfakebench")(root, json_file=root / "FaceForensics++.json")
    by = {r.key: r for r in recs}
    f = by["ffpp/Deepfakes/000_001"]
    assert f.label == 1 and f.identities == ("000", "001") and f.source_key == "ffpp/real/000"
    assert Path(f.path).is_dir() and Path(f.path).parts[-2:] == ("frames", "000_001")
    assert by["ffpp/real/002"].split == "test"
    assert {r.split for r in recs} >= {"train", "test"}


def test_deepfakebench_celebdf_form_keeps_test_out_of_train(tmp_path):
    root = tmp_path / "dfb"
    entries = {}
    for vid in ("id0_0000", "id1_0000", "id2_0000", "id3_0000"):
        f = touch(root / "Celeb-DF-v2/Celeb-real/frames" / vid / "000.png")
        entries[vid] = {"label": "CelebDFv2_real", "frames": [str(f.relative_to(root))]}
    test = {"id0_0000": entries["id0_0000"]}
    # DeepfakeBench lists test videos in train as well and uses test as val
    data = {"Celeb-DF-v2": {"CelebDFv2_real": {"train": entries, "val": test, "test": test}}}
    touch(root / "Celeb-DF-v2.json").write_text(json.dumps(data))
    recs = get_reader("deepfakebench")(root)
    by = {r.key: r for r in recs}
    assert by["celebdf/real/id0_0000"].split == "test"
    assert sum(r.key == "celebdf/real/id0_0000" for r in recs) == 1
    assert by["celebdf/real/id1_0000"].identity == "id1"


def test_checks(tmp_path, caplog):
    a = VideoRecord("x", "real", "a", 0, "train", "/d/a.mp4", ("p",))
    b = VideoRecord("x", "real", "b", 0, "test", "/d/b.mp4", ("p",))
    assert shared_identities([a, b])["train&test"] == 1
    assert any("identities shared across splits" in w for w in check_records([a, b]))
    dup = VideoRecord("x", "real", "a", 0, "test", "/d/a.mp4", ("p",))
    with pytest.raises(UserError, match="more than one split"):
        check_records([a, dup])
    with pytest.raises(UserError, match="official test list"):
        check_records([a], test_files=["d/a.mp4"])
