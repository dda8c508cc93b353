"""The reproduction scorecard on hand-made sweep folders with known predictions: each verdict, a paper
difference of zero or missing, Fig. 8's trend, and a missing or unfinished run as a gap line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from iid.errors import UserError
from iid.reporting import scorecard, stats
from iid.reporting.scorecard_line import Line, verdict

N = 40  # real and fake test videos per set
LABELS = np.r_[np.zeros(N), np.ones(N)].astype(int)


def _scores(kind: str, rng: np.random.Generator, signal: float = 0.0) -> np.ndarray:
    u = rng.uniform(size=2 * N)
    return {"strong": 0.7 * LABELS + 0.3 * u, "weak": u, "graded": signal * LABELS + u}[kind]


def _job(root: Path, name: str, experiment: str, row: str, seed: int, scores: dict[str, np.ndarray],
         finished: bool = True, **spec) -> Path:
    """A job folder as a sweep leaves it: config.json (experiment, row, seed), predictions/<set>.csv."""
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(f"- seed={seed}\n")
    config = {"seed": seed, "experiment": {"name": experiment, "row": row, **spec}, "backbone": {"name": "resnet34"},
              "data": {"synth": {"size": "tiny"}}}  # fmt: skip
    (d / "config.json").write_text(json.dumps(config))
    if finished:
        (d / "predictions").mkdir()
        for test_set, s in scores.items():
            with open(d / "predictions" / f"{test_set}.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["video", "row", "label", "prob"])
                for i, (p, y) in enumerate(zip(s, LABELS)):
                    w.writerow([f"{test_set}/{'fake' if y else 'real'}/{i:03d}", 0, y, p])
        (d / "results.json").write_text("{}")
    return d


def _table6(root: Path, seeds: int = 2) -> None:
    """Ours+SBI below SBI on FF++ (the paper: -0.0031) and Celeb-DF (the paper: +0.0097), equal on DFDC."""
    rng = np.random.default_rng(0)
    for s in range(seeds):
        _job(root, f"sbi{s}", "table6", "SBI", s, {"ffpp": _scores("strong", rng), "celebdf": _scores("strong", rng),
                                                   "dfdc": _scores("graded", rng, 0.3)})  # fmt: skip
        _job(root, f"ours{s}", "table6", "Ours+SBI", s, {"ffpp": _scores("weak", rng), "celebdf": _scores("weak", rng),
                                                         "dfdc": _scores("graded", rng, 0.3)})  # fmt: skip


def _find(lines: list[Line], experiment: str, column: str, row: str | None = None) -> Line:
    return next(x for x in lines if x.experiment == experiment and x.column == column and (row is None or x.row == row))


def test_verdict_by_where_the_interval_lies():
    cell = lambda lo, hi: stats.Cell((lo + hi) / 2, lo, hi, float("nan"), 1, 10)  # noqa: E731
    assert verdict(+1, cell(0.01, 0.2)) == "confirmed" and verdict(-1, cell(-0.2, -0.01)) == "confirmed"
    assert verdict(+1, cell(-0.2, -0.01)) == "contradicted" and verdict(-1, cell(0.01, 0.2)) == "contradicted"
    assert verdict(+1, cell(-0.1, 0.1)) == "unresolved" and verdict(-1, cell(-0.1, 0.1)) == "unresolved"
    assert verdict(0, cell(0.01, 0.2)) == "no direction" and verdict(+1, None) == "gap"


def test_each_verdict_from_hand_made_runs(tmp_path):
    _table6(tmp_path / "t6")
    lines, _ = scorecard.build([tmp_path / "t6"], n_boot=300)
    ffpp, celebdf, dfdc = (_find(lines, "table6", c) for c in ("ffpp", "celebdf", "dfdc"))
    assert ffpp.paper_diff == pytest.approx(0.9933 - 0.9964) and ffpp.verdict == "confirmed"
    assert celebdf.paper_diff == pytest.approx(0.9415 - 0.9318) and celebdf.verdict == "contradicted"
    assert dfdc.verdict == "unresolved" and dfdc.ours.low < 0 < dfdc.ours.high
    assert ffpp.ours.seeds == 2 and ffpp.ours.videos == 2 * N
    # ours is the seed-pooled paired difference of the rows' predictions
    rows = scorecard.Runs(scorecard.collect([tmp_path / "t6"])["table6"])
    ours, sbi = rows.videos("Ours+SBI", "celebdf"), rows.videos("SBI", "celebdf")
    expect = np.mean([stats.auc(s, ours.labels) for s in ours.scores]) - np.mean([stats.auc(s, sbi.labels) for s in sbi.scores])
    assert celebdf.ours.mean == pytest.approx(expect)
    # experiments without runs are all there, as gaps with their reason, never an error
    t2 = [x for x in lines if x.experiment == "table2"]
    assert len(t2) == 4 * 3 and all(x.verdict == "gap" for x in t2)
    # ... and the command that trains the missing row: its own row config, else the experiment's sweep
    assert _find(lines, "table2", "celebdf", "MFS").gap == (
        "no run of 'MFS' in the sweeps given; it is trained by "
        "`python -m iid.train -m experiment=table2 scale=mini row=table2/mfs`")
    assert _find(lines, "table3", "dfdc", "Ours (EfficientNet-b4)").gap.endswith(
        "`python -m iid.train -m experiment=table3 scale=mini row=table3/ours_b4`")
    assert _find(lines, "table5_methods", "ffpp/Face2Face", "Face2Face: ours").gap.endswith(
        "`python -m iid.train -m experiment=table5_methods scale=mini`")  # rows named by data.methods
    # a row named by its network: the mini sweep would run its own network, so the command names it
    assert _find(lines, "table7", "celebdf", "resnet34: ours").gap.endswith(
        "`python -m iid.train -m experiment=table7 scale=mini backbone=resnet34`")


def test_paper_difference_of_zero_or_missing_has_no_direction(tmp_path, monkeypatch):
    _table6(tmp_path)
    paper = {("SBI", "ffpp", "video_auc"): 0.9, ("Ours+SBI", "ffpp", "video_auc"): 0.9,  # the same number
             ("SBI", "celebdf", "video_auc"): 0.9}  # Ours+SBI has none on Celeb-DF  # fmt: skip
    monkeypatch.setattr(scorecard, "read_paper", lambda spec: paper)
    lines = scorecard.comparison_lines("table6", scorecard.collect([tmp_path])["table6"], n_boot=200)
    ffpp, celebdf = _find(lines, "table6", "ffpp"), _find(lines, "table6", "celebdf")
    assert ffpp.paper_diff == 0 and ffpp.verdict == "no direction" and ffpp.ours is not None
    assert celebdf.paper_diff is None and celebdf.verdict == "no direction"


def test_missing_and_unfinished_rows_are_gap_lines(tmp_path):
    rng = np.random.default_rng(1)
    _job(tmp_path, "sbi0", "table6", "SBI", 0, {"ffpp": _scores("strong", rng)})
    _job(tmp_path, "ours0", "table6", "Ours+SBI", 0, {}, finished=False)
    lines, _ = scorecard.build([tmp_path], n_boot=100)
    line = _find(lines, "table6", "ffpp")
    assert line.verdict == "gap" and "'Ours+SBI' did not finish" in line.gap and str(tmp_path / "ours0") in line.gap
    # a row the suite cannot run carries the experiment's reason (Table 5's DFDC-trained half)
    cross = [x for x in lines if x.experiment == "table5_cross" and x.row.startswith("DFDC-trained")]
    assert cross and all(x.verdict == "gap" and "DFDC" in x.gap and "training" in x.gap for x in cross)
    r34 = _find(cross, "table5_cross", "ffpp", "DFDC-trained resnet34: ours")
    assert r34.compared_with == "DFDC-trained resnet34: binary" and r34.paper_diff == pytest.approx(0.7732 - 0.6056)


def test_fig8_trend_with_the_number_of_methods(tmp_path):
    rng = np.random.default_rng(2)
    for k in (1, 2, 3):  # ours gains with every method, the binary classifier does not
        for series, signal in (("ours", 0.3 * k), ("binary", 0.2)):
            scores = {c: _scores("graded", rng, signal) for c in ("ffpp", "celebdf")}
            _job(tmp_path, f"{series}{k}", "fig8", f"{series}, {k} method{'s' * (k > 1)}", 0, scores, x=k, series=series)
    lines, _ = scorecard.build([tmp_path], n_boot=300)
    slope = _find(lines, "fig8", "celebdf", "ours: slope of AUC per added training method")
    gap_slope = _find(lines, "fig8", "celebdf", "ours minus binary: slope per added training method")
    assert slope.direction == 1 and slope.verdict == "confirmed" and slope.ours.mean > 0.05
    assert gap_slope.verdict == "confirmed"
    assert _find(lines, "fig8", "ffpp", "ours minus binary: slope per added training method").verdict == "no direction"
    assert _find(lines, "fig8", "dfdc", "ours: slope of AUC per added training method").verdict == "gap"
    assert _find(lines, "fig8", "celebdf", "ours, 3 methods").verdict == "confirmed"  # ours vs binary at k = 3


def test_two_finished_runs_of_one_row_and_seed_are_refused(tmp_path):
    _table6(tmp_path / "a", seeds=1)
    _table6(tmp_path / "b", seeds=1)
    with pytest.raises(UserError, match="finished in both"):
        scorecard.build([tmp_path / "a", tmp_path / "b"], n_boot=100)


def test_scorecard_command_writes_markdown_csv_and_forest_plot(python_m, tmp_path):
    _table6(tmp_path / "t6")
    out = tmp_path / "results" / "scorecard"
    p = python_m("iid.report", ["mode=scorecard", f"sweeps=[{tmp_path / 't6'}]", f"out={out}", "n_boot=200"],
                 cwd=tmp_path, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    head = "1 of 3 comparisons confirmed, 1 contradicted, 1 unresolved, on the embedded benchmark"
    assert head in p.stdout
    md = Path(f"{out}.md").read_text()
    assert f"**{head}.**" in md and "| Ours+SBI vs SBI | Celeb-DF | video AUC | +0.0097 |" in md
    rows = list(csv.DictReader(open(f"{out}.csv")))
    assert {r["verdict"] for r in rows} == {"confirmed", "contradicted", "unresolved", "gap"}
    assert all(r["reason"] for r in rows if r["verdict"] == "gap")
    assert Path(f"{out}.png").stat().st_size > 10_000
    bad = python_m("iid.report", ["mode=scorecard", f"sweeps=[{tmp_path / 'nope'}]"], cwd=tmp_path, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("error: sweeps:") and "Traceback" not in bad.stderr


def test_a_stand_in_networks_paper_basis_is_the_mean_of_the_rows_it_stands_for(tmp_path):
    """Table 5 (bottom) at mini: the FF++-trained EfficientNet-Lite0 pair's paper difference is the mean of
    the paper's FF++-trained pairs only, not of the DFDC-trained half (FF++ is cross-dataset there)."""
    rng = np.random.default_rng(2)
    for row, kind in (("efficientnet_lite0: binary", "weak"), ("efficientnet_lite0: ours", "strong")):
        _job(tmp_path, row.split(": ")[1], "table5_cross", row, 0, {"ffpp": _scores(kind, rng), "dfdc": _scores(kind, rng)})
    lines = scorecard.comparison_lines("table5_cross", scorecard.collect([tmp_path])["table5_cross"], n_boot=100)
    ffpp = _find(lines, "table5_cross", "ffpp", "efficientnet_lite0: ours")
    dfdc = _find(lines, "table5_cross", "dfdc", "efficientnet_lite0: ours")
    assert ffpp.paper_diff == pytest.approx(((0.997 - 0.9988) + (0.9978 - 0.9975)) / 2)
    assert dfdc.paper_diff == pytest.approx(((0.7149 - 0.4873) + (0.7374 - 0.5412)) / 2)
    assert "mean of the paper's 2 rows" in ffpp.basis and ffpp.verdict == "contradicted"


def test_a_row_naming_its_own_network_is_flagged_when_another_ran(tmp_path):
    # Table 3 names the network per row (its rows carry paper_backbone, the experiment does not)
    rng = np.random.default_rng(3)
    for row, net in (("Ours (EfficientNet-b4)", "efficientnet_b4"), ("SBI (EfficientNet-b4)", "efficientnet_b4"),
                     ("Ours (ResNet-34)", "resnet34"), ("ETD (ResNet-34)", "resnet34")):  # fmt: skip
        scores = {c: _scores("strong", rng) for c in ("ffpp", "celebdf", "dfdc")}
        _job(tmp_path, row.replace(" ", "_"), "table3", row, 0, scores, paper_backbone=net)  # the jobs ran resnet34
    lines = scorecard.comparison_lines("table3", scorecard.collect([tmp_path])["table3"], n_boot=50)
    b4 = _find(lines, "table3", "celebdf", "Ours (EfficientNet-b4)")
    assert "ours: resnet34; paper: efficientnet_b4" in b4.notes
    r34 = _find(lines, "table3", "celebdf", "Ours (ResNet-34)")
    assert not [n for n in r34.notes if n.startswith("ours: ")]  # the paper's network: nothing to flag


@pytest.mark.parametrize("row", ["short row", "a row named at length by its experiment, " * 3])
def test_forest_plot_keeps_every_label_and_the_title_whole(tmp_path, row):
    """Table 5's labels run past 120 characters: the figure widens with them, nothing is cut at its edges
    (the left and top pixel columns/rows stay background)."""
    from PIL import Image

    from iid.reporting.scorecard_plot import forest

    cell = stats.Cell(mean=0.1, low=0.05, high=0.15, seed_sd=float("nan"), seeds=1, videos=40)
    lines = [Line("table2", "IIL Table 2", row, "baseline", "celebdf", "video_auc", paper_diff=0.1, direction=1,
                  ours=cell) for _ in range(3)]  # fmt: skip
    forest(lines, tmp_path / "f.png", "3 of 3 comparisons confirmed, 0 contradicted, 0 unresolved")
    px = np.asarray(Image.open(tmp_path / "f.png").convert("L"))
    assert px[:, :3].min() > 200 and px[:3, :].min() > 200, "a label or the title runs off the image"
