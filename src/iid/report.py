"""`python -m iid.report sweep=<sweep folder> [n_boot=1000] [wandb=true]`

Writes an experiment's table (our cells with 95% intervals over test videos, the paper's numbers and
the paired differences) into the sweep folder as report.md, report.csv and report.png; a sweep of
perturbed evaluations gives the robustness table (Table 4). The report itself: iid.reporting.
"""

from __future__ import annotations

from collections.abc import Sequence

from iid.engine.cli import hydra_entry
from iid.reporting.write import report as run

__all__ = ["main", "run"]


def main(argv: Sequence[str] | None = None) -> None:
    hydra_entry("report", run, argv)


if __name__ == "__main__":
    main()
