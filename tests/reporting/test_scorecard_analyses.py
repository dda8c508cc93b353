"""The scorecard's lines from the analyses (iid.reporting.scorecard_analyses) on hand-made iid.analyze
outputs, written with the analyses' own writer in their real formats: each verdict of the ID probe,
I([N]) and ID overlap lines, missing models and outputs as gaps, the role mapping, and the probe's
bootstrap pairing the two models on the same held-out videos."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from iid.analysis.outputs import Outputs
from iid.errors import UserError
from iid.reporting import scorecard, scorecard_analyses
from iid.reporting.scorecard_line import Line

V, F = 30, 4  # held-out videos per data set, frames per video
KIND = {"ffpp": "in-dataset", "celebdf": "cross-dataset", "dfdc": "cross-dataset"}
ODD = [v for v in range(1, V, 2) if v % 3]  # 10 odd videos: 1, 5, 7, ..., 29


def _correct(extra: list[int]) -> np.ndarray:
    """(V, F) 0/1: every model is right on all frames of the even ("easy") videos and wrong on the odd
    ("hard") ones, but for one more right frame on each video in `extra`. Easy and hard videos are
    shared by both models, so only a bootstrap that draws the same videos for both sees the difference."""
    c = np.zeros((V, F), int)
    c[::2] = 1
    c[extra, 0] = 1
    return c


# per data set: binary's and ours' extras (celebdf: binary ahead, ffpp: ours ahead, dfdc: even)
PROBE = {"celebdf": (ODD, []), "ffpp": ([], ODD), "dfdc": (ODD[:5], ODD[5:])}


def _write(folder: Path, analysis: str, results: dict, tables: dict[str, list[dict]], protocol: dict | None = None,
           backbone: str = "resnet34") -> None:
    out = Outputs(folder / analysis, analysis)
    for stem, rows in tables.items():
        out.table(stem, rows)
    out.write_json({"analysis": analysis, "results": results, "protocol": protocol or {},
                    "checkpoints": {m: {"path": f"/runs/{m}", "family": "binary", "backbone": backbone,
                                        "train_set": "ffpp"} for m in results},
                    "files": {"tables": {k: f"{k}.csv" for k in tables}, "figures": {}}})  # fmt: skip


def _probe(folder: Path, models: dict[str, dict[str, np.ndarray]], reverse: tuple[str, ...] = ()) -> None:
    """probe.json + probe_frames.csv: models -> data set -> (V, F) correctness; `reverse`: models whose
    rows are written in the other order (the scorecard must pair frames by key, not by position)."""
    results, rows = {}, []
    for m, per in models.items():
        results[m] = {}
        for s, c in per.items():
            results[m][s] = {"kind": KIND[s], "identities": 10, "chance": 0.1, "test_frames": c.size, "test_videos": V,
                             "final_test_acc": float(c.mean())}  # fmt: skip
            mine = [{"model": m, "set": s, "kind": KIND[s], "video": f"{s}/real/{v:03d}", "frame": 10 * f,
                     "identity": f"id{v % 10}", "correct": int(c[v, f])} for v in range(len(c)) for f in range(F)]  # fmt: skip
            rows += mine[::-1] if m in reverse else mine
    _write(folder, "probe", results, {"probe": [], "probe_frames": rows})


def _standard_probe(folder: Path, control: bool = False, names=("binary", "ours")) -> dict:
    models = {names[0]: {s: _correct(b) for s, (b, _) in PROBE.items()},
              names[1]: {s: _correct(o) for s, (_, o) in PROBE.items()}}  # fmt: skip
    if control:  # the network before training: as ours on every set
        models["control"] = {s: _correct(o) for s, (_, o) in PROBE.items()}
    _probe(folder, models, reverse=(names[1],))
    return models


# interaction: binary's AUC of I([N]) with its interval: > 0.5 in-dataset (confirmed), > 0.5 on Celeb-DF
# (contradicted: the paper has < 0.5 cross-dataset), spanning 0.5 on DFDC (unresolved)
INTERACTION = {"ffpp": (0.80, 0.62, 0.93), "celebdf": (0.70, 0.55, 0.85), "dfdc": (0.45, 0.30, 0.60)}


def _interaction(folder: Path, backbone: str = "resnet34", cells: dict = INTERACTION, name: str = "binary") -> None:
    results = {name: {s: {"kind": KIND[s], "frames": 80, "videos": 16, "fakes": 40, "auc_I": a, "auc_I_ci95": [lo, hi]}
                          for s, (a, lo, hi) in cells.items()}}  # fmt: skip
    _write(folder, "interaction", results, {"interaction": []}, {"grid": 16}, backbone)


# overlap: 4 identities' rectangles per model and data set (x0, y0, x1, y1)
FAR = [(0, 0, 2, 2), (10, 0, 12, 2), (20, 0, 22, 2), (30, 0, 32, 2)]  # no pair overlaps
SAME = [(0, 0, 2, 2)] * 4  # every pair overlaps (IoU 1)
PAIR_AB = [(0, 0, 2, 2), (1, 0, 3, 2), (10, 0, 12, 2), (20, 0, 22, 2)]  # A and B: IoU 2/6 = 1/3
PAIR_CD = [(0, 0, 2, 2), (10, 0, 12, 2), (20, 0, 22, 2), (21, 0, 23, 2)]  # C and D: IoU 1/3
THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.5]
OVERLAP = {"celebdf": (FAR, SAME), "ffpp": (SAME, FAR), "dfdc": (PAIR_AB, PAIR_CD)}  # (binary, ours)


def _overlap(folder: Path, cells: dict = OVERLAP, names=("binary", "ours")) -> None:
    results, rows = {m: {} for m in names}, []
    for s, boxes in cells.items():
        for m, bx in zip(names, boxes):
            results[m][s] = {"kind": KIND[s], "identities": 4, "frames": 20, "per_threshold": {}}
            rows += [{"model": m, "set": s, "kind": KIND[s], "threshold": t, "identity": f"id{i}", "overlaps": 0,
                      "identities": 4, "x0": b[0], "y0": b[1], "x1": b[2], "y1": b[3]}
                     for t in THRESHOLDS for i, b in enumerate(bx)]  # fmt: skip
    _write(folder, "overlap", results, {"overlap": rows}, {"thresholds": THRESHOLDS})


@pytest.fixture
def outputs(tmp_path) -> Path:
    _standard_probe(tmp_path)
    _interaction(tmp_path)
    _overlap(tmp_path)
    return tmp_path


def _line(lines: list[Line], analysis: str, column: str, row: str = "binary", ref: str | None = None) -> Line:
    art = scorecard_analyses.ARTIFACTS[analysis]
    return next(x for x in lines if x.artifact == art and x.column == column and x.row == row
                and (ref is None or x.compared_with == ref))  # fmt: skip


def test_probe_lines_each_verdict_and_their_numbers(outputs):
    lines = scorecard_analyses.lines([outputs], n_boot=1000)
    celebdf, ffpp, dfdc = (_line(lines, "probe", s, ref="ours") for s in ("celebdf", "ffpp", "dfdc"))
    assert celebdf.direction == 1 and celebdf.paper_diff is None and "Fig. 5b/5d" in celebdf.basis
    assert celebdf.verdict == "confirmed" and ffpp.verdict == "contradicted" and dfdc.verdict == "unresolved"
    # the point: held-out accuracy binary minus ours, 10 frames of 120 more for binary on Celeb-DF
    assert celebdf.ours.mean == pytest.approx(10 / (V * F)) and ffpp.ours.mean == pytest.approx(-10 / (V * F))
    assert dfdc.ours.mean == 0 and dfdc.ours.low < 0 < dfdc.ours.high
    assert celebdf.ours.videos == V and "binary 0.583, ours 0.500 (chance 0.100)" in celebdf.notes[0]
    # without a control or DA+MFS only the binary vs ours lines exist
    assert {(x.row, x.compared_with) for x in lines if x.artifact == scorecard_analyses.ARTIFACTS["probe"]} == {("binary", "ours")}


def test_probe_bootstrap_draws_the_same_videos_for_both_models(outputs):
    """Easy and hard videos are shared: resampled together, only binary's extra frames vary (interval
    above 0); resampled apart, the easy/hard mix swamps them (an interval across 0). The scorecard's
    interval is the paired one, recomputed here by a plain loop over resamples."""
    line = _line(scorecard_analyses.lines([outputs], n_boot=1000), "probe", "celebdf", ref="ours")
    a, b = _correct(PROBE["celebdf"][0]), _correct(PROBE["celebdf"][1])  # (V, F), the same videos
    rng = np.random.default_rng(123)
    paired, unpaired = [], []
    for _ in range(2000):
        va, vb = rng.integers(0, V, V), rng.integers(0, V, V)
        paired.append(a[va].mean() - b[va].mean())
        unpaired.append(a[va].mean() - b[vb].mean())
    lo, hi = np.percentile(paired, [2.5, 97.5])
    assert line.ours.low == pytest.approx(lo, abs=0.02) and line.ours.high == pytest.approx(hi, abs=0.02)
    assert line.ours.low > 0 and line.verdict == "confirmed"
    ulo, uhi = np.percentile(unpaired, [2.5, 97.5])
    assert ulo < 0 < uhi  # what the line would say if the two models were resampled apart


def test_interaction_lines_against_table1(outputs, tmp_path):
    lines = scorecard_analyses.lines([outputs], n_boot=200)
    ffpp, celebdf, dfdc = (_line(lines, "interaction", s) for s in ("ffpp", "celebdf", "dfdc"))
    assert ffpp.compared_with == scorecard_analyses.CHANCE and ffpp.metric == "auc_I"
    assert (ffpp.verdict, celebdf.verdict, dfdc.verdict) == ("confirmed", "contradicted", "unresolved")
    assert (ffpp.ours.mean, ffpp.ours.low, ffpp.ours.high) == pytest.approx((0.30, 0.12, 0.43))
    assert ffpp.paper_diff == pytest.approx(0.8977 - 0.5) and ffpp.basis == ""  # Table 1, ResNet-34
    assert celebdf.paper_diff == pytest.approx(0.4722 - 0.5) and celebdf.direction == -1
    assert dfdc.paper_diff is None and dfdc.direction == -1 and "Hypothesis 2" in dfdc.basis  # not in Table 1
    # a backbone Table 1 does not have: the mean of its five
    _interaction(tmp_path / "lite", backbone="efficientnet_lite0")
    lite = _line(scorecard_analyses.lines([tmp_path / "lite"], n_boot=200), "interaction", "celebdf")
    assert lite.paper_diff == pytest.approx(np.mean([0.4688, 0.4722, 0.4947, 0.4723, 0.4443]) - 0.5)
    assert lite.basis == "mean of the paper's 5 backbones"


def test_overlap_lines_each_verdict_and_their_numbers(outputs):
    lines = scorecard_analyses.lines([outputs], n_boot=1000)
    celebdf, ffpp, dfdc = (_line(lines, "overlap", s, ref="ours") for s in ("celebdf", "ffpp", "dfdc"))
    # the paper: ours' identities overlap more, so binary minus ours is below zero
    assert celebdf.direction == -1 and celebdf.metric == "overlap_rate"
    assert celebdf.verdict == "confirmed" and ffpp.verdict == "contradicted" and dfdc.verdict == "unresolved"
    assert celebdf.ours.mean == pytest.approx(-1.0) and ffpp.ours.mean == pytest.approx(1.0)
    # DFDC: one pair of six overlaps in each model, at 3 of the 5 thresholds (IoU 1/3): rate 0.1 each
    assert dfdc.ours.mean == pytest.approx(0.0) and dfdc.ours.low < 0 < dfdc.ours.high
    assert "overlap rate binary 0.100, ours 0.100; 4 identities resampled" in dfdc.notes[0]


def test_control_and_components_add_their_lines(tmp_path):
    _standard_probe(tmp_path, control=True)
    lines = scorecard_analyses.lines([tmp_path], n_boot=300)
    pairs = {(x.row, x.compared_with) for x in lines if x.artifact == scorecard_analyses.ARTIFACTS["probe"]}
    assert pairs == {("binary", "ours"), ("binary", "control"), ("control", "ours")}
    bc = _line(lines, "probe", "celebdf", ref="control")
    assert bc.verdict == "confirmed" and bc.ours.mean == pytest.approx(10 / (V * F))  # control probes as ours
    co = _line(lines, "probe", "celebdf", row="control", ref="ours")
    assert co.ours.mean == 0 and co.verdict == "unresolved"
    # DA+MFS without the ADM, probed like the binary classifier: the ADM line, and DA+MFS's share without a direction
    models = {"binary": {"celebdf": _correct(ODD)}, "ours": {"celebdf": _correct([])}, "da_mfs": {"celebdf": _correct(ODD)}}
    _probe(tmp_path / "da", models)
    da = scorecard_analyses.lines([tmp_path / "da"], n_boot=300)
    assert _line(da, "probe", "celebdf", row="da_mfs", ref="ours").verdict == "confirmed"
    share = _line(da, "probe", "celebdf", ref="da_mfs")
    assert share.direction == 0 and share.verdict == "no direction" and share.ours.mean == 0


def test_missing_outputs_models_and_frames_are_gap_lines(tmp_path):
    # nothing analysed: a gap per hypothesis and data set, with the command to run
    lines = scorecard_analyses.lines([], n_boot=100)
    assert len(lines) == 3 * 3 and all(x.verdict == "gap" for x in lines)
    assert "no probe.json in the analyses given" in _line(lines, "probe", "ffpp").gap
    assert "python -m iid.analyze probe ckpt=[...] names=[binary,ours]" in _line(lines, "probe", "ffpp").gap
    # a probe without ours, and a control probed on other frames
    models = {"binary": {"celebdf": _correct(ODD)}, "untrained": {"celebdf": _correct([])}}
    _probe(tmp_path, models)
    line = _line(scorecard_analyses.lines([tmp_path], n_boot=100), "probe", "celebdf")
    assert line.verdict == "gap" and "no model named 'ours' in probe.json (it has binary, untrained)" in line.gap
    assert "analysis_names.ours=<name>" in line.gap
    mapped = scorecard_analyses.lines([tmp_path], {"ours": "untrained"}, n_boot=100)
    assert _line(mapped, "probe", "celebdf").verdict == "confirmed"  # the role mapped onto the run's name
    short = _correct([])[: V - 1]  # one video fewer
    _probe(tmp_path / "other", {"binary": {"celebdf": _correct(ODD)}, "ours": {"celebdf": short}})
    other = _line(scorecard_analyses.lines([tmp_path / "other"], n_boot=100), "probe", "celebdf")
    assert other.verdict == "gap" and "not probed on the same held-out frames" in other.gap
    # a model analysed on one set only: the other sets of the pair are gaps; no interval: a gap
    _interaction(tmp_path / "i", cells={"ffpp": (0.8, None, None)})
    ia = _line(scorecard_analyses.lines([tmp_path / "i"], n_boot=100), "interaction", "ffpp")
    assert ia.verdict == "gap" and "no AUC of I([N]) with an interval" in ia.gap
    with pytest.raises(UserError, match="analysis_names: unknown role"):
        scorecard_analyses.lines([tmp_path], {"baseline": "b"})
    with pytest.raises(UserError, match="is not a folder"):
        scorecard_analyses.lines([tmp_path / "nope"])


def test_later_folders_win_per_model_and_set(tmp_path):
    _standard_probe(tmp_path / "a")
    # a later run re-probed ours on Celeb-DF only, now as good as binary
    _probe(tmp_path / "b", {"binary": {"celebdf": _correct(ODD)}, "ours": {"celebdf": _correct(ODD)}})
    lines = scorecard_analyses.lines([tmp_path / "a", tmp_path / "b"], n_boot=100)
    assert _line(lines, "probe", "celebdf").ours.mean == 0
    assert _line(lines, "probe", "ffpp").ours.mean == pytest.approx(-10 / (V * F))  # still the first folder's


def test_scorecard_command_with_analyses(outputs, python_m, tmp_path):
    """Analyses only (no sweeps), names mapped on the command line: the head line counts the analysis
    lines, the Markdown groups them, the CSV and the forest plot hold them."""
    mapped = tmp_path / "mapped"
    _standard_probe(mapped, names=("b", "o"))
    _interaction(mapped, name="b")
    _overlap(mapped, names=("b", "o"))
    (mapped / "tsne").mkdir()
    Outputs(mapped / "tsne", "tsne").write_json({"results": {"b": {"ffpp": {"silhouette_identity": 0.4}}}})
    out = tmp_path / "res" / "scorecard"
    args = ["mode=scorecard", f"analyses=[{mapped}]", "analysis_names={binary: b, ours: o}", f"out={out}", "n_boot=300"]
    p = python_m("iid.report", args, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    # probe, I([N]), overlap: one confirmed, one contradicted, one unresolved each
    head = "3 of 9 comparisons confirmed, 3 contradicted, 3 unresolved, on the embedded benchmark"
    assert head in p.stdout
    md = Path(f"{out}.md").read_text()
    assert "## The analyses of Implicit Identity Leakage" in md and "### IIL Table 1: I([N])" in md
    assert "| binary vs ours | Celeb-DF | ID accuracy | + (text) |" in md
    assert "| binary vs chance (AUC 0.5) | FF++ | AUC of I([N]) − 0.5 | +0.3977 | +0.300 [+0.120, +0.430] |" in md
    assert "- no verdict line: t-SNE" in md and "ffpp: binary 0.40" in md
    rows = [r for r in csv.DictReader(open(f"{out}.csv")) if r["experiment"] == "analyses"]
    assert len(rows) == 9 and {r["verdict"] for r in rows} == {"confirmed", "contradicted", "unresolved"}
    assert Path(f"{out}.png").stat().st_size > 10_000


def test_build_counts_the_analysis_lines_in_the_head_line(outputs):
    lines, _ = scorecard.build([], n_boot=200, analyses=[outputs])
    assert scorecard.headline(lines).startswith("3 of 9 comparisons confirmed, 3 contradicted, 3 unresolved")
