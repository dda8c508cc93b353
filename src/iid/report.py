"""`python -m iid.report sweep=<sweep folder> [n_boot=1000] [wandb=true]`
`python -m iid.report mode=scorecard sweeps=[<sweep folder>,...] [out=docs/results/scorecard]`

Writes an experiment's table (our cells with 95% intervals over test videos, the paper's numbers and
the paired differences) into the sweep folder as report.md, report.csv and report.png; a sweep of
perturbed evaluations gives the robustness table (Table 4). The report itself: iid.reporting.
mode=scorecard reads many sweeps and writes the reproduction scorecard (every comparison the papers
make, our paired difference and a verdict): iid.reporting.scorecard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from iid.engine.cli import hydra_entry
from iid.errors import UserError
from iid.reporting.write import report as table_report

__all__ = ["main", "run"]


def run(cfg: Any) -> Any:
    mode = cfg.get("mode", "table") if hasattr(cfg, "get") else "table"
    if mode == "scorecard":
        from iid.reporting.scorecard_write import report

        return report(cfg)
    if mode != "table":
        raise UserError(f"mode={mode}: choose table (one sweep: sweep=...) or scorecard (sweeps=[...])")
    return table_report(cfg)


def main(argv: Sequence[str] | None = None) -> None:
    hydra_entry("report", run, argv)


if __name__ == "__main__":
    main()
