"""Each experiment of the suite as a tiny sweep (debug=smoke, one seed, tiny data) through the report, and
the report on a hand-made sweep folder (cells, paper numbers, gaps)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

# experiment -> extra overrides that keep its tiny sweep short (fewer rows where it has many)
TINY = {
    "table2": [],
    "table7": ["backbone=test_resnet"],
    "table1": ["backbone=test_resnet"],
    "table5_methods": ["backbone=test_resnet", "data.methods=[Face2Face]"],
    "table5_cross": ["backbone=test_resnet"],
    "fig8": ["row=fig8/binary_1,fig8/ours_2"],
    "table3": ["row=table3/sbi_r34,table3/etd"],
    "table6": [],
    "etd_table4": ["row=etd/both,etd/neither"],
    "etd_fig5": ["row=etd/blocks_3"],
}


def _tiny(tiny_base: list[str]) -> list[str]:
    """tiny_base for sweeps: no ADM width (binary rows have no ADM), the tiny data where scale=mini looks."""
    over = [o for o in tiny_base if not o.startswith("model.adm.")]
    stores = next(o.split("=", 1)[1] for o in over if o.startswith("paths.stores="))
    return [*over, f"data.store_root={stores}/synthetic", "seed=0", "backbone=test_resnet"]  # wins over a row's


@pytest.fixture(scope="session")
def run_cache(build_once) -> Path:
    """One run cache for the session's tiny sweeps, as a user's sweeps share runs/cache: a row that two
    experiments train alike (Table 2's baseline is Table 7's, Table 1's and Table 5's binary row on the
    same network) trains once and is reused after: 14 trainings for the 22 jobs."""
    return build_once("run_cache", lambda folder: folder)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(TINY))
def test_tiny_sweep_of_each_experiment_runs_through_the_report(experiment, tiny_base, run_cache, cli, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", f"experiment={experiment}", *_tiny(tiny_base), *TINY[experiment], f"cache={run_cache}",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    p = cli("iid.train", args, cwd=tmp_path, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    r = cli("iid.report", [f"sweep={sweep}", "n_boot=200"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    md = (sweep / "report.md").read_text()
    rows = list(csv.DictReader(open(sweep / "report.csv")))
    done = [row for row in rows if row["mean"]]
    assert done, md
    for row in done:
        assert float(row["ci_low"]) <= float(row["mean"]) <= float(row["ci_high"])
        assert row["seeds"] == "1"
    # a run writes its ROC and its first training batch; rows of the table name the runs' rows
    job = next(d for d in sweep.iterdir() if (d / "results.json").is_file())
    assert (job / "roc.png").is_file() and (job / "first_batch.png").is_file()
    ran = {json.loads((d / "config.json").read_text())["experiment"]["row"] for d in sweep.iterdir()
           if (d / "config.json").is_file()}  # fmt: skip
    assert ran <= {row["row"] for row in rows}
    assert (sweep / "report.png").stat().st_size > 10_000
    if experiment == "table2":  # paper numbers sit beside ours
        assert "| DA+MFS+ADM † |" in md and "0.9115" in md  # † : test_resnet from random weights, not the paper's
    if experiment == "table1":  # the same sweep again: its finished job is not trained anew
        again = cli("iid.train", args, cwd=tmp_path, timeout=900)
        assert again.returncode == 0 and "has finished already" in again.stdout + again.stderr, again.stderr[-2000:]


def _fake_job(root: Path, name: str, row: str, seed: int, spec: dict, probs: np.ndarray, labels: np.ndarray,
              finished: bool = True, backbone: str = "resnet34", pretrained: object = False) -> None:
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(f"- row={row}\n- seed={seed}\n")
    config = {"seed": seed, "experiment": {**spec, "row": row}, "backbone": {"name": backbone, "pretrained": pretrained}}
    (d / "config.json").write_text(json.dumps(config))
    if not finished:
        return
    (d / "predictions").mkdir()
    with open(d / "predictions" / "ffpp.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "row", "label", "prob"])
        for i, (p, y) in enumerate(zip(probs, labels)):
            method = "Deepfakes" if y else "real"
            w.writerow([f"ffpp/{method}/{i:03d}", 2 * i, y, p])  # two frames per video
            w.writerow([f"ffpp/{method}/{i:03d}", 2 * i + 1, y, p])
    (d / "results.json").write_text("{}")


def test_report_on_a_hand_made_sweep(tmp_path, capsys):
    from iid.reporting import stats
    from iid.reporting.write import report

    spec = {"name": "table2", "rows": ["baseline", "MFS"], "columns": ["ffpp"], "metrics": ["video_auc"],
            "compare": {"MFS": "baseline"}, "paper": "table2"}  # fmt: skip
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(30), np.ones(30)].astype(int)
    base = [rng.uniform(size=60) * 0.5 + 0.3 * labels for _ in range(2)]
    mfs = [rng.uniform(size=60) * 0.5 + 0.5 * labels for _ in range(2)]
    for s in range(2):
        _fake_job(tmp_path, f"b{s}", "baseline", s, spec, base[s], labels)
        _fake_job(tmp_path, f"m{s}", "MFS", s, spec, mfs[s], labels)
    _fake_job(tmp_path, "m2", "MFS", 2, spec, mfs[0], labels, finished=False)  # a job that died
    report({"sweep": str(tmp_path), "n_boot": 300})
    rows = {r["row"]: r for r in csv.DictReader(open(tmp_path / "report.csv"))}
    expected = np.mean([stats.auc(p, labels) for p in base])
    assert float(rows["baseline"]["mean"]) == pytest.approx(expected)
    assert float(rows["baseline"]["paper"]) == pytest.approx(0.9988)
    diff = float(rows["MFS"]["diff"])
    assert diff == pytest.approx(np.mean([stats.auc(p, labels) for p in mfs]) - expected)
    md = (tmp_path / "report.md").read_text()
    assert "MFS: seed(s) [2] did not finish" in md and str(tmp_path / "m2") in md
    assert "0.9870" in md  # the paper's FF++ number of the MFS row beside ours
    assert f"| MFS | baseline | {diff:+.3f} [" in md  # a difference carries its sign (here positive)


@pytest.mark.parametrize("backbone", ["resnet34", "resnet18"])
def test_report_flags_runs_of_another_network_than_the_papers(backbone, tmp_path):
    from iid.reporting.write import report

    spec = {"name": "table2", "rows": ["baseline"], "columns": ["ffpp"], "metrics": ["video_auc"],
            "paper": "table2", "paper_backbone": "resnet34"}  # fmt: skip
    labels = np.r_[np.zeros(10), np.ones(10)].astype(int)
    _fake_job(tmp_path, "b0", "baseline", 0, spec, np.linspace(0, 1, 20), labels, backbone=backbone)
    report({"sweep": str(tmp_path), "n_boot": 100})
    md = (tmp_path / "report.md").read_text()
    row = next(csv.DictReader(open(tmp_path / "report.csv")))
    assert row["backbone"] == backbone and row["paper_backbone"] == "resnet34"
    if backbone == "resnet34":
        assert "Not the paper's network" not in md and "paper (resnet34)" not in md
        assert md.splitlines()[0] == "# table2"
    else:
        assert "these runs used resnet18; the paper's numbers are for resnet34" in md
        assert md.splitlines()[0] == "# table2; these runs: resnet18"  # the title does not claim the paper's
        assert "FF++ paper (resnet34)" in md


@pytest.mark.parametrize(("backbone", "pretrained", "flagged"), [
    ("resnet34", "imagenet", False), ("resnet34", False, True), ("efficientnet_lite0", "imagenet", True),
])  # fmt: skip
def test_report_flags_cells_whose_network_or_initial_weights_are_not_the_papers(backbone, pretrained, flagged, tmp_path):
    from iid.reporting.write import report

    # Table 3's rows each name their paper network in their own config (paper_backbone per row)
    spec = {"name": "table3", "rows": ["Ours (ResNet-34)", "Ours (EfficientNet-b3)"], "columns": ["ffpp"],
            "metrics": ["video_auc"], "paper": "table3"}  # fmt: skip
    labels = np.r_[np.zeros(10), np.ones(10)].astype(int)
    _fake_job(tmp_path, "r34", "Ours (ResNet-34)", 0, {**spec, "paper_backbone": "resnet34"}, np.linspace(0, 1, 20),
              labels, backbone=backbone, pretrained=pretrained)
    _fake_job(tmp_path, "b3", "Ours (EfficientNet-b3)", 0, {**spec, "paper_backbone": "efficientnet_b3"},
              np.linspace(0, 1, 20), labels, backbone="efficientnet_b3", pretrained=True)
    report({"sweep": str(tmp_path), "n_boot": 100})
    md = (tmp_path / "report.md").read_text()
    rows = {r["row"]: r for r in csv.DictReader(open(tmp_path / "report.csv"))}
    assert rows["Ours (ResNet-34)"]["init"] == ("random" if pretrained is False else "ImageNet")
    assert rows["Ours (EfficientNet-b3)"]["paper_backbone"] == "efficientnet_b3"
    assert "| Ours (EfficientNet-b3) |" in md  # the paper's network from ImageNet: no mark
    if flagged:
        assert "| Ours (ResNet-34) † |" in md
        init = "random" if pretrained is False else "ImageNet"
        assert f"Ours (ResNet-34): {backbone} ({init}), paper: resnet34 (ImageNet)" in md
    else:
        assert "†" not in md
