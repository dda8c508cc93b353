"""Every analysis on two tiny checkpoints and the tiny benchmark: files, numbers, protocol."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from iid.analysis.outputs import load, read_table


def test_probe_outputs(analyses: Path):
    doc = load(analyses, "probe")
    assert set(doc["results"]) == {"binary", "caddm"}
    for per in doc["results"].values():
        assert set(per) == {"ffpp", "celebdf", "dfdc"}
        ff = per["ffpp"]
        assert ff["kind"] == "in-dataset" and per["celebdf"]["kind"] == "cross-dataset"
        # FF++ originals: one video per person, so split in time; Celeb-DF people have 3 videos
        assert ff["split"]["by_frame"] == ff["identities"] and per["celebdf"]["split"]["by_video"] > 0
        assert abs(ff["chance"] - 1 / ff["identities"]) < 1e-9 and len(ff["history"]["test_acc"]) == 5
        assert ff["feature_dim"] == 96  # test_resnet's channels
    rows = read_table(analyses / "probe", "probe")
    assert {r["set"] for r in rows} == {"ffpp", "celebdf", "dfdc"}
    assert (analyses / "probe" / "probe.png").stat().st_size > 10_000
    # per held-out frame: its video and whether the final probe was right; the same frames for every model
    frames = read_table(analyses / "probe", "probe_frames")
    for s in ("ffpp", "celebdf", "dfdc"):
        keys = {m: [(r["video"], r["frame"]) for r in frames if r["model"] == m and r["set"] == s] for m in doc["results"]}
        assert keys["binary"] == keys["caddm"] and len(keys["binary"]) == doc["results"]["binary"][s]["test_frames"]
        for m, per in doc["results"].items():
            correct = [int(r["correct"]) for r in frames if r["model"] == m and r["set"] == s]
            assert abs(np.mean(correct) - per[s]["final_test_acc"]) < 1e-6  # the JSON's is a float32 mean


def test_interaction_outputs(analyses: Path):
    doc = load(analyses, "interaction")
    assert doc["protocol"]["units"] == 4 and doc["protocol"]["baseline"] == "mean"
    for per in doc["results"].values():
        assert set(per) == {"ffpp", "celebdf"}
        for r in per.values():
            assert r["frames"] == 4 and r["fakes"] == 2  # max_videos=4, balanced, one frame each
            assert 0.0 <= r["auc_I"] <= 1.0
    rows = read_table(analyses / "interaction", "interaction")
    # f(N) = I + local + f(empty): the decomposition the paper's reading rests on
    doc_f0 = {(m, s): r["f_empty"] for m, per in doc["results"].items() for s, r in per.items()}
    for r in rows:
        assert abs(float(r["f_full"]) - (float(r["I"]) + float(r["local"]) + doc_f0[(r["model"], r["set"])])) < 1e-6


def test_overlap_outputs(analyses: Path):
    doc = load(analyses, "overlap")
    rows = read_table(analyses / "overlap", "overlap")
    for m, per in doc["results"].items():
        for s, r in per.items():
            counts = [int(x["overlaps"]) for x in rows if x["model"] == m and x["set"] == s]
            assert len(counts) == 5 * r["identities"] and max(counts) <= r["identities"] - 1
            means = [r["per_threshold"][t]["mean"] for t in sorted(r["per_threshold"], key=float)]
            assert means == sorted(means, reverse=True)  # a higher threshold never adds overlaps
    # each identity's rectangle rides along (the scorecard resamples identities from them)
    assert all(float(r["x0"]) <= float(r["x1"]) and float(r["y0"]) <= float(r["y1"]) for r in rows)


def test_tsne_outputs(analyses: Path):
    doc = load(analyses, "tsne")
    rows = read_table(analyses / "tsne", "tsne")
    for per in doc["results"].values():
        for r in per.values():
            assert r["identities"] <= 3 and r["frames"] <= 12
    assert all(np.isfinite(float(r["x"])) for r in rows)
    assert {r["label"] for r in rows} == {"0", "1"}  # reals and fakes both drawn


def test_visual_outputs(analyses: Path):
    doc = load(analyses, "visual")
    assert list(doc["results"]) == ["caddm"]  # the binary family has no ADM: skipped
    groups = doc["results"]["caddm"]
    assert groups["test fake"]["n"] == 2 and groups["test real"]["n"] == 2
    # threshold 0: every face gets a box; the MFS fakes carry ground truth and an IoU
    assert all(g["with_box"] == g["n"] for g in groups.values())
    if "MFS fake" in groups:
        assert 0.0 <= groups["MFS fake"]["mean_iou_with_mfs_box"] <= 1.0
    assert (analyses / "visual" / "visual.png").is_file()


def test_cli_runs_one_analysis_and_refuses_bad_input(tiny_ckpts, tiny_data, tmp_path, cli_env, python_m):
    args = ["overlap", f"ckpt={tiny_ckpts['binary']}", f"out={tmp_path}", "sets=[celebdf]", "analysis.frames=1",
            "analysis.thresholds=[0.2]", *tiny_data]  # fmt: skip
    p = python_m("iid.analyze", args, cwd=tmp_path, env=cli_env, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads((tmp_path / "overlap" / "overlap.json").read_text())
    assert list(doc["results"]["binary"]) == ["celebdf"] and doc["protocol"]["thresholds"] == [0.2]
    assert (tmp_path / "overlap" / "overlap.csv").is_file() and (tmp_path / "overlap" / "overlap.png").is_file()
    # user errors: one line, exit code 2
    for bad in (["probe"], ["probe", f"ckpt={tmp_path}/none.ckpt"], ["probe", "ckpt=x", "analysis.fakes=both"],
                ["visual", f"ckpt={tiny_ckpts['binary']}", *tiny_data]):  # fmt: skip
        p = python_m("iid.analyze", bad, cwd=tmp_path, env=cli_env, timeout=300)
        assert p.returncode == 2, (bad, p.stderr[-1500:])
        assert p.stderr.strip().startswith("error:") and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_untrained_copy_is_the_same_model_with_fresh_weights(tiny_ckpts, tmp_path):
    import torch

    from iid.analysis.common import load_models, untrained_copy

    out = untrained_copy(tiny_ckpts["caddm"], tmp_path / "random" / "checkpoints" / "best.ckpt", seed=5)
    a, b = load_models([str(tiny_ckpts["caddm"]), str(tmp_path / "random")], ["trained", "random"], torch.device("cpu"))
    assert b.path == out and a.config == b.config
    sa, sb = a.module.state_dict(), b.module.state_dict()
    conv = next(k for k in sa if k.endswith("weight") and sa[k].ndim == 4)
    assert sa.keys() == sb.keys() and not torch.equal(sa[conv], sb[conv])


def test_runs_per_checkpoint_merge_into_the_joint_run(tiny_ckpts, tiny_data, compose_cfg, tmp_path):
    from iid.analysis.outputs import merge
    from iid.analysis.runner import analyze

    common = ["analysis=overlap", "sets=[celebdf]", "analysis.frames=1", *tiny_data]

    def run(ckpts: str, out: Path) -> dict:
        return analyze(compose_cfg([*common, f"ckpt={ckpts}", f"out={out}"], "analyze"))

    joint = run(f"[{tiny_ckpts['binary']},{tiny_ckpts['caddm']}]", tmp_path / "joint")
    run(str(tiny_ckpts["binary"]), tmp_path / "a")
    run(str(tiny_ckpts["caddm"]), tmp_path / "b")
    path = merge([tmp_path / "a", tmp_path / "b"], tmp_path / "merged" / "overlap", "overlap")
    merged = json.loads(path.read_text())
    assert merged["results"] == joint["results"] and list(merged["checkpoints"]) == ["binary", "caddm"]
    assert len(read_table(tmp_path / "merged", "overlap")) == len(read_table(tmp_path / "joint", "overlap"))
    assert (tmp_path / "merged" / "overlap" / "overlap.png").is_file()
