"""`report(cfg)`, run by `python -m iid.report sweep=<folder>`: a sweep of perturbed evaluations gives
the robustness table (robustness), any other sweep its experiment's table (tables) and figure
(table_plot), written into the sweep folder as report.md, report.csv and report.png.

This is the top of iid.reporting: it imports the modules below it, none of them imports it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iid.errors import UserError
from iid.reporting import robustness
from iid.reporting.table_plot import plot
from iid.reporting.tables import Table, build_table, find_jobs, markdown, write_csv
from iid.settings import bounds, plain, settings


@dataclass(frozen=True)
class ReportArgs:
    sweep: str = "???"
    n_boot: int = field(default=1000, metadata=bounds(100))
    wandb: bool = False  # also log the table to W&B (offline unless logged in)


def _to_wandb(t: Table, sweep: Path, md: str) -> None:
    import wandb

    from iid.engine.loggers import wandb_mode

    run = wandb.init(project="iid", group=t.spec.name, job_type="report", name=f"{t.spec.name}-report",
                     dir=str(sweep), mode=wandb_mode())  # fmt: skip
    with open(sweep / "report.csv") as f:
        rows = list(csv.reader(f))
    run.log({"table": wandb.Table(columns=rows[0], data=rows[1:]), "figure": wandb.Image(str(sweep / "report.png")),
             "report": wandb.Html(f"<pre>{md}</pre>")})  # fmt: skip
    run.finish()


def report(cfg: Any) -> dict[str, Path]:
    args = settings(ReportArgs, "report", {k: v for k, v in plain(cfg).items() if k in ("sweep", "n_boot", "wandb")})
    sweep = Path(args.sweep)
    if args.sweep == "???" or not sweep.is_dir():
        raise UserError(f"sweep={args.sweep}: give the folder of a sweep (multirun/<date>/<time> or hydra.sweep.dir)")
    robust = robustness.write(sweep, args.n_boot)  # a sweep of iid.evaluate over perturbations: Table 4
    if robust is not None:
        print(f"wrote {', '.join(str(p) for p in robust.values())}")
        return robust
    jobs = find_jobs(sweep)
    if not jobs:
        raise UserError(f"{sweep}: no job folders (results.json or .hydra/overrides.yaml) under it")
    t = build_table(jobs, args.n_boot)
    md = markdown(t)
    out = {"md": sweep / "report.md", "csv": sweep / "report.csv", "png": sweep / "report.png"}
    out["md"].write_text(md)
    write_csv(t, out["csv"])
    plot(t, out["png"])
    if args.wandb:
        _to_wandb(t, sweep, md)
    print(md)
    print(f"wrote {', '.join(str(p) for p in out.values())}")
    return out


__all__ = ["ReportArgs", "report"]
