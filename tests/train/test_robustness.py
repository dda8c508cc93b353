"""Table 4 from an evaluate sweep over perturbations and levels, through the report."""

from __future__ import annotations

import csv

import pytest

from iid.reporting.robustness import PAPER_SIX


@pytest.mark.slow
def test_table4_report_from_an_evaluate_sweep(trained_runs, cli, tmp_path):
    ckpt = trained_runs["on"] / "checkpoints" / "best.ckpt"
    sweep = tmp_path / "t4"
    p = cli("iid.evaluate", ["-m", f"ckpt={ckpt}", f"perturb={','.join(PAPER_SIX)},compression", "perturb.level=1,5",
                             "test_sets=[ffpp]", f"hydra.sweep.dir={sweep}"], cwd=tmp_path, timeout=1200)  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    r = cli("iid.report", [f"sweep={sweep}", "n_boot=200"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    md = (sweep / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| checkpoint"))
    assert all(c in header for c in (*PAPER_SIX, "Avg", "compression"))  # the paper's 6, their Avg, and ours
    rows = list(csv.DictReader(open(sweep / "report.csv")))
    cells = {r["perturbation"]: r for r in rows}
    assert set(cells) == {*PAPER_SIX, "Avg", "compression"}
    assert all(r["levels"] == "2" for n, r in cells.items() if n != "Avg") and cells["Avg"]["levels"] == "12"
    for r in rows:
        assert float(r["ci_low"]) <= float(r["mean_over_levels"]) <= float(r["ci_high"])
    assert "paper: Ours" in md and (sweep / "report.png").stat().st_size > 10_000
