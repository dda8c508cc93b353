"""iid.predict: scores and boxes of real files, one line per bad input, resume, alignment as in prepare."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from iid.errors import UserError
from iid.inference.run import predict, predict_settings

FILE_FIELDS = {"file", "kind", "status", "error", "warning", "score", "decision", "threshold", "frames_requested",
               "frames_decoded", "frames_scored", "width", "height", "fps", "frame_count", "duration", "model",
               "tracks", "frames", "outputs", "settings", "source", "seconds"}  # fmt: skip
FACE_FIELDS = {"track", "score", "face_box", "face_quad", "artifact_box", "artifact_quad", "artifact_score"}


def run(ckpt: Path, inp: Path, out: Path, **kw) -> dict:
    return predict({"ckpt": str(ckpt), "input": str(inp), "out": str(out), "workers": 0, **kw})


def inside(box: list[float], w: int, h: int) -> bool:
    x0, y0, x1, y1 = box
    return 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h


def test_fake_and_original_every_field(tmp_path, caddm_ckpt, pair):
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(pair["fake"], inp / "fake.mp4")
    shutil.copy(pair["real"], inp / "real.mp4")
    res = run(caddm_ckpt, inp, tmp_path / "out", frames=4)
    assert res["counts"] == {"scored": 2, "no_face": 0, "unreadable": 0}
    for name in ("fake.mp4", "real.mp4"):
        doc = json.loads((tmp_path / "out" / f"{name}.json").read_text())
        assert set(doc) == FILE_FIELDS
        assert doc["status"] == "scored" and doc["kind"] == "video" and doc["model"]["artifact_boxes"]
        assert doc["frames_requested"] == 4 and len(doc["frames"]) == 4 == doc["frames_scored"]
        # the frames prepare would take: equal intervals, first and last included
        assert [f["index"] for f in doc["frames"]] == [0, 2, 5, 7] and doc["frame_count"] == 8
        scores = [f["score"] for f in doc["frames"]]
        assert doc["score"] == pytest.approx(np.mean(scores), abs=1e-5)  # the video score of evaluation
        assert doc["decision"] == ("fake" if doc["score"] >= 0.5 else "real")
        for fr in doc["frames"]:
            (face,) = fr["faces"]
            assert set(face) == FACE_FIELDS and 0 <= face["score"] <= 1
            assert inside(face["face_box"], doc["width"], doc["height"])
            assert inside(face["artifact_box"], doc["width"], doc["height"])
            # the artifact box lies in the crop the model saw (up to the clipping at the frame border)
            fx0, fy0, fx1, fy1 = face["face_box"]
            ax0, ay0, ax1, ay1 = face["artifact_box"]
            assert fx0 - 1 <= ax0 and ay0 >= fy0 - 1 and ax1 <= fx1 + 1 and ay1 <= fy1 + 1
            assert 0 <= face["artifact_score"] <= 1
    rows = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("file,kind,status,score,decision") and len(rows) == 3


def test_photos_have_one_face(tmp_path, caddm_ckpt, photos):
    inp = tmp_path / "in"
    inp.mkdir()
    for name in ("astronaut.png", "grace_hopper.jpg"):
        shutil.copy(photos(name), inp / name)
    cv2.imwrite(str(inp / "grace.webp"), cv2.imread(str(photos("grace_hopper.jpg"))))  # WebP too
    res = run(caddm_ckpt, inp, tmp_path / "out", faces="all")
    assert res["counts"]["scored"] == 3
    for name, doc in res["docs"].items():
        (frame,) = doc["frames"]
        assert len(frame["faces"]) == 1, name  # every face searched: exactly one
        x0, y0, x1, y1 = frame["faces"][0]["face_box"]
        # the crop covers the face: about 1.9x the landmarks' width, centred on it
        assert 150 < x1 - x0 < 450 and inside([x0, y0, x1, y1], doc["width"], doc["height"])


def test_bad_inputs_one_line_each_and_counts(tmp_path, caddm_ckpt, bad_folder, cli):
    """Through the CLI (a worker process): every bad file one line, the run goes on, exit 0, counts."""
    out = tmp_path / "out"
    p = cli([f"ckpt={caddm_ckpt}", f"input={bad_folder}", f"out={out}"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.strip().splitlines()
    per_file = {ln.split(":", 1)[0]: ln for ln in lines if ln.split(":", 1)[0] in
                ("truncated.mp4", "notes.mp4", "faceless.png", "grace.jpg")}  # fmt: skip
    assert len(per_file) == 4, p.stdout
    assert "unreadable" in per_file["truncated.mp4"] and "unreadable" in per_file["notes.mp4"]
    assert "no face" in per_file["faceless.png"] and "grace.jpg: " in per_file["grace.jpg"]
    assert sum(ln.startswith("notes.mp4") for ln in lines) == 1
    assert "scored 1, no face 1, unreadable 2" in lines[-1]
    no_face = json.loads((out / "faceless.png.json").read_text())
    assert (
        no_face["status"] == "no_face" and no_face["score"] is None and no_face["decision"] is None
    )  # never "real"
    csv_rows = (out / "summary.csv").read_text().splitlines()
    assert len(csv_rows) == 5

    # resume: nothing is scored again; a new file is
    stamps = {f: f.stat().st_mtime_ns for f in out.glob("*.json")}
    shutil.copy(bad_folder / "grace.jpg", bad_folder / "grace2.jpg")
    p2 = cli([f"ckpt={caddm_ckpt}", f"input={bad_folder}", f"out={out}"], cwd=tmp_path)
    assert p2.returncode == 0, p2.stderr[-2000:]
    assert "4 of 5 file(s) scored before" in p2.stdout
    assert {f: f.stat().st_mtime_ns for f in stamps} == stamps
    assert "grace2.jpg: " in p2.stdout and "scored 2, no face 1, unreadable 2 (4 skipped" in p2.stdout


def test_rerun_skips_and_threshold_redecides(tmp_path, caddm_ckpt, photos):
    inp = tmp_path / "g.jpg"
    shutil.copy(photos("grace_hopper.jpg"), inp)
    first = run(caddm_ckpt, inp, tmp_path / "out")
    assert first["skipped"] == 0
    again = run(caddm_ckpt, inp, tmp_path / "out", threshold=0.0)
    assert again["skipped"] == 1 and again["times"]["frames"] == 0  # nothing decoded or scored
    doc = again["docs"][str(inp)]
    assert doc["threshold"] == 0.0 and doc["decision"] == "fake"
    assert doc["score"] == first["docs"][str(inp)]["score"]
    inp.touch()  # a changed file is scored again
    assert run(caddm_ckpt, inp, tmp_path / "out")["skipped"] == 0


def test_overlay_sheet_and_video(tmp_path, caddm_ckpt, pair):
    import av

    res = run(caddm_ckpt, pair["fake"], tmp_path / "out", frames=6, overlay=True)
    doc = res["docs"][str(pair["fake"])]
    sheet, video = Path(doc["outputs"]["sheet"]), Path(doc["outputs"]["video"])
    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[1] > 320 * 2
    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
        assert c.streams.video[0].codec_context.name == "h264"
    assert len(frames) == 6 and frames[0].shape[:2] == (doc["height"], doc["width"])
    # the boxes are drawn: the overlay frame differs from the plain frame near the artifact box
    from iid.inference.media import VideoStream

    plain = next(iter(VideoStream(pair["fake"], [0]))).image.astype(int)
    x0, y0, x1, y1 = map(int, doc["frames"][0]["faces"][0]["artifact_box"])
    assert (
        np.abs(frames[0][y0 : y1 + 1, x0 : x1 + 1].astype(int) - plain[y0 : y1 + 1, x0 : x1 + 1]).max() > 60
    )


def test_binary_model_has_no_boxes(tmp_path, binary_ckpt, photos):
    res = run(binary_ckpt, photos("astronaut.png"), tmp_path / "out")
    doc = res["docs"][str(photos("astronaut.png"))]
    face = doc["frames"][0]["faces"][0]
    assert doc["model"]["family"] == "binary" and not doc["model"]["artifact_boxes"]
    assert face["artifact_box"] is None and 0 <= face["score"] <= 1


def test_huge_image_is_downscaled_for_detection(tmp_path, caddm_ckpt, photos, monkeypatch):
    from iid.inference import faces

    big = cv2.resize(
        cv2.imread(str(photos("grace_hopper.jpg"))), None, fx=6, fy=6, interpolation=cv2.INTER_CUBIC
    )
    cv2.imwrite(str(tmp_path / "big.jpg"), big)  # 3072x3600
    seen = []
    real = faces.DlibFaces.all_faces

    def spy(self, img):
        seen.append(self.detect_size)
        return real(self, img)

    monkeypatch.setattr(faces.DlibFaces, "all_faces", spy)
    doc = run(caddm_ckpt, tmp_path / "big.jpg", tmp_path / "out")["docs"][str(tmp_path / "big.jpg")]
    assert seen == [640] and doc["status"] == "scored"
    x0, y0, x1, y1 = doc["frames"][0]["faces"][0]["face_box"]
    # the same face as on the original photo, six times larger (landmarks fitted at full resolution)
    small = run(caddm_ckpt, photos("grace_hopper.jpg"), tmp_path / "out2")["docs"][
        str(photos("grace_hopper.jpg"))
    ]
    sx0, sy0, sx1, sy1 = small["frames"][0]["faces"][0]["face_box"]
    assert x0 == pytest.approx(6 * sx0, abs=30) and x1 - x0 == pytest.approx(6 * (sx1 - sx0), rel=0.08)


def test_every_face_tracked_across_frames(tmp_path, caddm_ckpt, photos):
    """Two people side by side, moving: faces=all gives two tracks, each in every frame."""
    from iid.synth.video import write_video

    a = cv2.resize(cv2.imread(str(photos("astronaut.png")))[:, :, ::-1], (320, 320))
    g = cv2.resize(cv2.imread(str(photos("grace_hopper.jpg")))[:, :, ::-1], (272, 320))
    canvas = np.zeros((360, 640, 3), np.uint8)
    canvas[20:340, 10:330], canvas[20:340, 350:622] = a, g
    frames = np.stack([np.roll(canvas, 4 * i, axis=1) for i in range(6)])
    write_video(tmp_path / "two.mp4", frames, crf=18)
    doc = run(caddm_ckpt, tmp_path / "two.mp4", tmp_path / "out", faces="all", frames="all")["docs"][
        str(tmp_path / "two.mp4")
    ]
    assert [len(f["faces"]) for f in doc["frames"]] == [2] * 6
    assert sorted((t["track"], t["frames"]) for t in doc["tracks"]) == [(0, 6), (1, 6)]
    for f in doc["frames"]:  # the same person keeps their track: the left face is always one track
        left = min(f["faces"], key=lambda x: x["face_box"][0])
        assert left["track"] == min(doc["frames"][0]["faces"], key=lambda x: x["face_box"][0])["track"]
    assert doc["score"] == pytest.approx(max(t["score"] for t in doc["tracks"]))


def test_alignment_is_prepares(pair):
    """The canvases predict scores are the rows prepare stores for the same frames (oracle landmarks)."""
    from iid.data.extract import ExtractConfig, extract_video
    from iid.data.faces import get_backend
    from iid.data.records import VideoRecord
    from iid.inference.faces import FaceFinder
    from iid.inference.worker import ScanSettings, scan_file

    cfg = ExtractConfig(frames=4, landmarks="oracle")
    rec = VideoRecord(dataset="x", method="real", video_id="v", label=0, split="test", path=str(pair["real"]),
                      identities=("a",), compression="c23", source_key=None, mask_path=None)  # fmt: skip
    rows, man = extract_video(rec, None, cfg, get_backend("oracle"))
    s = ScanSettings(
        frames=4, landmarks="oracle", detect_size=None, every_face=False, align=cfg, overlay_side=None
    )
    msgs = list(scan_file(0, pair["real"], "video", FaceFinder("oracle"), s))
    frames = [m[2] for m in msgs if m[0] == "frame"]
    assert [f.index for f in frames] == man["frame_indices"] == rows["frame_index"].tolist()
    for f, canvas, lm in zip(frames, rows["frames"], rows["landmarks"]):
        np.testing.assert_array_equal(f.faces[0].canvas, canvas)
        np.testing.assert_allclose(f.faces[0].landmarks, lm, atol=1e-4)


def test_dlib_largest_face_is_the_backends(photos):
    """At detect_size >= the frame, the largest face's landmarks are the dlib backend's (prepare's)."""
    pytest.importorskip("dlib")
    from iid.data.faces import get_backend
    from iid.inference.faces import DlibFaces

    frames = {i: np.ascontiguousarray(cv2.imread(str(photos(n)))[:, :, ::-1]) for i, n in
              enumerate(("astronaut.png", "grace_hopper.jpg"))}  # fmt: skip
    ref = get_backend("dlib").landmarks(frames, "")
    mine = DlibFaces(detect_size=640)
    for i, img in frames.items():
        np.testing.assert_array_equal(mine.all_faces(img)[0], ref[i])


def test_box_mapping_inverts_both_warps(caddm_ckpt):
    """A crop box mapped to the frame and warped forward again (alignment, then eval crop) is the box."""
    from iid.inference.scoring import Scorer

    sc = Scorer(caddm_ckpt)
    ang = np.deg2rad(12)
    m = np.array(
        [[0.8 * np.cos(ang), -0.8 * np.sin(ang), 31.0], [0.8 * np.sin(ang), 0.8 * np.cos(ang), -7.0]]
    )
    box = np.array([0.2, 0.3, 0.6, 0.5])
    quad = sc.quad(box, m) - 0.5  # frame centre coordinates
    fwd = sc.canvas_to_crop @ np.vstack([m, [0, 0, 1]])
    back = (np.c_[quad, np.ones(4)] @ fwd.T)[:, :2] + 0.5  # crop pixel edges
    np.testing.assert_allclose(
        back / sc.out_size, [[0.2, 0.3], [0.6, 0.3], [0.6, 0.5], [0.2, 0.5]], atol=1e-9
    )


@pytest.mark.parametrize(
    "bad, msg",
    [({"frames": 0}, "frames=0"), ({"frames": "some"}, "frames='some'"), ({"faces": "both"}, "faces="),
     ({"threshold": 1.5}, "threshold="), ({"ckpt": "???"}, "pass ckpt"), ({"device": "tpu"}, "device=")],
)  # fmt: skip
def test_settings_are_checked(bad, msg):
    with pytest.raises(UserError, match=msg.replace("?", r"\?")):
        predict_settings({"ckpt": "c", "input": "i", **bad})


def test_missing_input_and_empty_folder(tmp_path, caddm_ckpt):
    with pytest.raises(UserError, match="not found"):
        run(caddm_ckpt, tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(UserError, match="no image or video"):
        run(caddm_ckpt, tmp_path / "empty", tmp_path / "out")


def test_outputs_inside_the_input_folder_are_not_inputs(tmp_path, caddm_ckpt, photos):
    """out= inside input=: the contact sheets written there (PNGs) are never scored as inputs."""
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(photos("astronaut.png"), inp / "a.png")
    first = run(caddm_ckpt, inp, inp / "scores", overlay=True)
    assert (inp / "scores" / "a.png.sheet.png").is_file() and first["files"] == 1
    again = run(caddm_ckpt, inp, inp / "scores", overlay=True)
    assert again["files"] == 1 and again["skipped"] == 1


def test_frozen_network_scores_as_the_eager_one(caddm_ckpt, binary_ckpt):
    """jit=true (the default) traces and freezes the network: the same scores and boxes up to rounding."""
    from iid.inference.scoring import Scorer

    rng = np.random.default_rng(0)
    canvases = rng.integers(0, 255, (3, 256, 256, 3), dtype=np.uint8)
    lm = np.zeros((3, 68, 2), np.float32)
    for ckpt in (caddm_ckpt, binary_ckpt):
        eager, frozen = Scorer(ckpt), Scorer(ckpt, jit=True)
        a, b = eager.score(canvases, lm), frozen.score(canvases, lm)
        assert frozen._frozen  # traced, not the eager fallback
        for x, y in zip(a, b):
            assert x.score == pytest.approx(y.score, abs=1e-5)
            np.testing.assert_allclose(x.boxes, y.boxes, atol=1e-4)


def real_trained(ckpt: Path, out: Path) -> Path:
    """A copy of `ckpt` whose stored config trained on a real data set (data=ffpp), weights unchanged."""
    import torch
    from hydra import compose, initialize_config_module

    from iid.engine.config import plain_config

    with initialize_config_module("iid.conf", version_base="1.3"):
        data = plain_config(compose("config", overrides=["data=ffpp"]))["data"]
    doc = torch.load(ckpt, weights_only=True)
    doc["iid_config"]["data"] = data
    torch.save(doc, out)
    return out


def test_a_synthetic_checkpoint_is_cautioned_once_per_run_and_in_every_result(tmp_path, binary_ckpt, photos, capsys):
    import csv

    inp = tmp_path / "in"
    inp.mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(photos("grace_hopper.jpg"), inp / name)
    res = run(binary_ckpt, inp, tmp_path / "out")  # the fixture's config is the default: data=synthetic
    err = capsys.readouterr()
    cautions = [ln for ln in err.err.splitlines() if ln.startswith("warning: ")]
    assert len(cautions) == 1 and "synthetic benchmark" in cautions[0] and "warning" not in err.out
    with open(tmp_path / "out" / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all("synthetic benchmark" in r["warning"] for r in rows)
    assert all("synthetic benchmark" in d["warning"] for d in res["docs"].values())
    # trained on a real data set: no caution anywhere
    real = run(real_trained(binary_ckpt, tmp_path / "real.ckpt"), inp, tmp_path / "out_real")
    assert "warning" not in capsys.readouterr().err
    assert all(d["warning"] is None for d in real["docs"].values())
    with open(tmp_path / "out_real" / "summary.csv") as f:
        assert all(r["warning"] == "" for r in csv.DictReader(f))


@pytest.mark.parametrize("image_size,tiles", [((160, 640), 1), ((1920, 360), 1), ((640, 480), 8)])
def test_contact_sheet_title_fits_or_wraps(image_size, tiles, photos):
    """A narrow and a wide photo (one tile: a 328 px sheet) and a video's 8 tiles: every title line lies
    inside the sheet, the lines together are the whole title, and the right margin stays background."""
    from iid.inference.outputs import MARGIN, Overlay, contact_sheet, text_width, wrap

    w, h = image_size
    img = cv2.resize(cv2.imread(str(photos("grace_hopper.jpg")))[:, :, ::-1], (w, h))
    overlay = Overlay(Path("unused.png"), None, {}, tiles, 0.5)
    face = {"score": 0.979, "face_quad": [[10, 10], [w / 2, 10], [w / 2, h / 2], [10, h / 2]], "track": 0}
    for _ in range(tiles):
        overlay.add(img, 1.0, [face])
    title = ("a_rather_long_file_name_from_a_phone_camera_20240101_120000.jpg: fake 0.979 (threshold 0.5), "
             "1/1 frames with a face, caddm efficientnet_b4")  # fmt: skip
    sheet = contact_sheet(overlay.tiles, title)
    width = sheet.shape[1]
    lines = wrap(title, width - 2 * MARGIN)
    assert "".join(lines).replace(" ", "") == title.replace(" ", "")  # nothing of it dropped
    assert all(MARGIN + text_width(line) <= width - MARGIN for line in lines)
    bar = sheet[: 12 + 22 * len(lines)]
    assert (bar[:, -4:] == 24).all()  # no text runs into the right edge
    assert (bar[:, MARGIN : width - MARGIN] == 255).any(axis=(0, 2)).sum() > 0.3 * (width - 2 * MARGIN)  # drawn
    if width < 700:
        assert len(lines) > 1  # the one-tile sheets wrap
    assert sheet.shape[0] > bar.shape[0] + overlay.tiles[0].shape[0]  # the tiles below the title


def test_the_run_folder_train_prints_is_a_checkpoint(tmp_path, caddm_ckpt, photos):
    """ckpt=<run folder> (what iid.train prints at its end) scores as ckpt=<its checkpoints/best.ckpt>."""
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "best.ckpt").symlink_to(caddm_ckpt)
    inp = tmp_path / "g.jpg"
    shutil.copy(photos("grace_hopper.jpg"), inp)
    by_folder = run(tmp_path / "run", inp, tmp_path / "a")["docs"][str(inp)]
    by_file = run(caddm_ckpt, inp, tmp_path / "b")["docs"][str(inp)]
    assert by_folder["score"] == by_file["score"]
    assert by_folder["model"]["checkpoint"] == str(Path(caddm_ckpt).resolve())
