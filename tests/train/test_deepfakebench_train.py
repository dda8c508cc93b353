"""`data=deepfakebench` end to end: a DeepfakeBench-preprocessed folder (frames, 81-point landmarks,
data-set JSON) made from the tiny synthetic FF++, prepared and trained on, with results per test set."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from iid.data.sources import get_reader

FOLDER = {"real": ("original_sequences/youtube", "FF-real"), "Deepfakes": ("manipulated_sequences/Deepfakes", "FF-DF")}


def make_deepfakebench(synthetic_root: Path, out: Path) -> Path:
    """Write DeepfakeBench's layout: <sub>/c23/frames/<vid>/<i>.png, landmarks/<vid>/<i>.npy, and its JSON."""
    records = get_reader("ffpp")(synthetic_root / "FaceForensics++", methods=["Deepfakes"])
    tree: dict = {"FaceForensics++": {"FF-real": {}, "FF-DF": {}}}
    for rec in records:
        sub, label = FOLDER[rec.method]
        lms = np.load(Path(rec.path).with_suffix(".landmarks.npy"))
        cap, frames = cv2.VideoCapture(rec.path), []
        for i in range(len(lms)):
            ok, bgr = cap.read()
            if not ok:
                break
            img = out / "FaceForensics++" / sub / "c23/frames" / rec.video_id / f"{i:03d}.png"
            img.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(img), bgr)
            lm = out / "FaceForensics++" / sub / "c23/landmarks" / rec.video_id / f"{i:03d}.npy"
            lm.parent.mkdir(parents=True, exist_ok=True)
            np.save(lm, np.concatenate([lms[i], np.zeros((13, 2), np.float32)]))  # 81 points, iBUG first
            frames.append(str(img.relative_to(out)))
        split = tree["FaceForensics++"][label].setdefault(rec.split, {"c23": {}})
        split["c23"][rec.video_id] = {"label": label, "frames": frames}
    (out / "FaceForensics++.json").write_text(json.dumps(tree))
    return out / "FaceForensics++.json"


@pytest.mark.slow
def test_deepfakebench_folder_trains_and_evaluates(synthetic_root, tmp_path, compose_cfg):
    from iid.data.preparation import prepare_dataset
    from iid.train import run

    root = tmp_path / "dfb"
    json_file = make_deepfakebench(synthetic_root, root)
    stores = tmp_path / "stores"
    summary = prepare_dataset("deepfakebench", root, stores, frames=4, progress=False, json_file=json_file)
    assert summary["status"].get("ok", 0) > 0 and set(summary["status"]) <= {"ok", "no_face"}
    run_dir = tmp_path / "run"
    run(compose_cfg([
        "data=deepfakebench", f"data.root={root}", f"data.json={json_file}", f"data.store_root={stores}",
        "data.test_sets=[ffpp]",  # this folder holds FF++ only
        "debug=smoke", "backbone=test_resnet", "model.adm.width=128", "eval.test_frames=null", "eval.val_frames=null",
        f"run_dir={run_dir}",
    ]))  # fmt: skip
    doc = json.loads((run_dir / "results.json").read_text())
    res = doc["test"]["ffpp"]
    assert res["videos"] > 0 and res["frames"] >= res["videos"] and 0 <= res["video_auc"] <= 1
