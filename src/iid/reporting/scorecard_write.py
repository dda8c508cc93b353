"""`python -m iid.report mode=scorecard sweeps=[<sweep>,...] [analyses=[<iid.analyze out>,...]]
[out=docs/results/scorecard]`: the scorecard (iid.reporting.scorecard, and the analyses' lines of
iid.reporting.scorecard_analyses) as <out>.md, <out>.csv and <out>.png, and a W&B table with wandb=true."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iid.engine.runcache import duration, saved_seconds
from iid.errors import UserError
from iid.reporting import scorecard_analyses as analyses
from iid.reporting.scorecard import EXPERIMENTS, Line, benchmark, build, counts, headline
from iid.reporting.tables import column_title
from iid.settings import bounds, plain, settings

FIELDS = ("artifact", "experiment", "row", "compared_with", "test_set", "metric", "paper_diff", "paper_basis",
          "diff", "diff_low", "diff_high", "seeds", "videos", "verdict", "reason", "notes")  # fmt: skip


@dataclass(frozen=True)
class ScorecardArgs:
    sweeps: tuple[str, ...] = ()
    analyses: tuple[str, ...] = ()  # folders iid.analyze wrote (out=): probe/, interaction/, overlap/, tsne/
    analysis_names: dict[str, str] | None = None  # role -> the name a run gave it, e.g. {ours: o}
    out: str = "docs/results/scorecard"  # <out>.md, <out>.csv, <out>.png
    n_boot: int = field(default=1000, metadata=bounds(100))
    wandb: bool = False


def _signed(x: float) -> str:
    return f"{x:+.3f}"


def _ours(line: Line) -> str:
    c = line.ours
    if c is None or math.isnan(c.mean):
        return "—"
    return f"{_signed(c.mean)} [{_signed(c.low)}, {_signed(c.high)}]"


def _paper(line: Line) -> str:
    if line.paper_diff is not None:
        return f"{line.paper_diff:+.4f}" + (" (mean)" if line.basis else "")
    return {1: "+ (text)", -1: "− (text)"}.get(line.direction, "—")


def _metric(metric: str) -> str:
    if metric in analyses.METRIC_TITLES:
        return analyses.METRIC_TITLES[metric]
    level, name = metric.split("_", 1)
    return f"{level} {name.upper()}"


def _section(part: Sequence[Line], heading: str, basis: bool = False) -> list[str]:
    """A heading, its counts and its table; `basis`: the note starts with where the paper's sign comes from."""
    pc = counts(part)
    out = [heading, "", f"{pc['confirmed']} confirmed, {pc['contradicted']} contradicted, "
           f"{pc['unresolved']} unresolved, {pc['gap']} gaps.", "",
           "| comparison | test set | metric | paper Δ | ours Δ [95% CI] | seeds | verdict | note |",
           "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for line in part:
        note = "; ".join([*([line.gap] if line.gap else []), *([line.basis] if basis and line.basis else []),
                          *line.notes])  # fmt: skip
        seeds = str(line.ours.seeds) if line.ours else "—"
        out.append(f"| {line.comparison} | {column_title(line.column)} | {_metric(line.metric)} | {_paper(line)} | "
                   f"{_ours(line)} | {seeds} | {line.verdict} | {note} |")  # fmt: skip
    return [*out, ""]


ANALYSES_TEXT = (
    "The analyses (`python -m iid.analyze`, docs/analyses.md) of the checkpoints named binary, ours and, where "
    "analysed, control (the network before training) and da_mfs (DA+MFS without the ADM): one checkpoint each. "
    "Comparisons of identity: the held-out ID probe accuracy (95% interval: paired bootstrap over the held-out "
    "videos) and the ID overlap rate (the share of pairs of identities whose PCA rectangles overlap, averaged over "
    "the IoU thresholds; interval: identities resampled), one model minus the other; the paper's sign is that of "
    "its text (`+ (text)`, `− (text)`). Hypothesis 2: the binary classifier's frame AUC of I([N]) minus 0.5 "
    "(interval: the analysis' bootstrap over videos) beside Table 1's.")


def markdown(lines: Sequence[Line], head: str, cache_note: str, no_verdict: Sequence[str] = ()) -> str:
    c = counts(lines)
    out = ["# Reproduction scorecard", "", f"**{head}.**", "",
           f"{len(lines)} lines: {c['gap']} gaps (a run missing, with the reason), {c['no direction']} without a "
           "direction in the paper. Each line compares a row with the row the paper compares it with, on one test "
           "set: the paper's difference (its two numbers; `(mean)`: the mean of the paper's rows of the same "
           "comparison, for a network it did not train; `(text)`: a direction stated in words only) and ours, the "
           "difference of seed-mean AUCs on the same test videos with its 95% bootstrap interval over videos "
           "(seeds pooled). Verdict: confirmed when the interval lies on the paper's side of zero, contradicted "
           "when on the other side, unresolved when it straddles zero.", ""]  # fmt: skip
    if cache_note:
        out += [cache_note, ""]
    tables = [line for line in lines if line.experiment != analyses.EXPERIMENT]
    for artifact in dict.fromkeys(line.artifact for line in tables):
        out += _section([line for line in tables if line.artifact == artifact], f"## {artifact}")
    found = [line for line in lines if line.experiment == analyses.EXPERIMENT]
    if found or no_verdict:
        out += ["## The analyses of Implicit Identity Leakage", "", ANALYSES_TEXT, ""]
        for artifact in dict.fromkeys(line.artifact for line in found):
            out += _section([line for line in found if line.artifact == artifact], f"### {artifact}", basis=True)
        out += [f"- no verdict line: {why}" for why in no_verdict] + ([""] if no_verdict else [])
    return "\n".join(out)


def write_csv(lines: Sequence[Line], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for line in lines:
            c = line.ours
            w.writerow({"artifact": line.artifact, "experiment": line.experiment, "row": line.row,
                        "compared_with": line.compared_with, "test_set": line.column, "metric": line.metric,
                        "paper_diff": "" if line.paper_diff is None else line.paper_diff,
                        "paper_basis": line.basis or ("" if line.paper_diff is not None else
                                                      {1: "+", -1: "-"}.get(line.direction, "")),
                        "diff": c.mean if c else "", "diff_low": c.low if c else "", "diff_high": c.high if c else "",
                        "seeds": c.seeds if c else "", "videos": c.videos if c else "", "verdict": line.verdict,
                        "reason": line.gap or "", "notes": "; ".join(line.notes)})  # fmt: skip


def _to_wandb(out: dict[str, Path], md: str) -> None:
    import wandb

    from iid.engine.loggers import wandb_mode

    where = Path("runs") / "scorecard"  # W&B's local files: not beside the results in docs/
    where.mkdir(parents=True, exist_ok=True)
    run = wandb.init(project="iid", group="scorecard", job_type="report", name="scorecard", dir=str(where),
                     mode=wandb_mode())  # fmt: skip
    with open(out["csv"]) as f:
        rows = list(csv.reader(f))
    run.log({"scorecard": wandb.Table(columns=rows[0], data=rows[1:]), "forest": wandb.Image(str(out["png"])),
             "report": wandb.Html(f"<pre>{md}</pre>")})  # fmt: skip
    run.finish()


def _cache_note(jobs: Sequence[Any]) -> str:
    n, seconds = saved_seconds(j.path for j in jobs)
    if not n:
        return ""
    return (f"Run cache: {n} of {len(jobs)} jobs reused a finished run with the same training config "
            f"({duration(seconds)} of training not repeated).")  # fmt: skip


def report(cfg: Any) -> dict[str, Path]:
    raw = plain(cfg)
    folders = {k: [raw[k]] if isinstance(raw.get(k), str) else list(raw.get(k) or []) for k in ("sweeps", "analyses")}
    args = settings(ScorecardArgs, "report", {**folders, **{k: raw[k] for k in ("out", "n_boot", "wandb", "analysis_names")
                                                            if k in raw}})  # fmt: skip
    if not args.sweeps and not args.analyses:
        raise UserError("mode=scorecard needs the sweep folders: sweeps=[multirun/table2/mini/<date>,...] "
                        "(and/or the analyses' folders: analyses=[runs/analyses,...])")  # fmt: skip
    lines, by_exp = build(args.sweeps, args.n_boot, args.analyses, args.analysis_names)
    jobs = [j for js in by_exp.values() for j in js]
    head = headline(lines, benchmark(jobs))
    md = markdown(lines, head, _cache_note(jobs), analyses.no_verdict(args.analyses, args.analysis_names))
    base = Path(args.out)
    base.parent.mkdir(parents=True, exist_ok=True)
    out = {ext: base.with_name(f"{base.name}.{ext}") for ext in ("md", "csv", "png")}
    out["md"].write_text(md)
    write_csv(lines, out["csv"])
    from iid.reporting.scorecard_plot import forest

    forest(lines, out["png"], head)
    if args.wandb:
        _to_wandb(out, md)
    ignored = sorted(set(by_exp) - set(EXPERIMENTS))
    print(md)
    if ignored:
        print(f"not in the scorecard (no comparison of a paper): {', '.join(ignored)}")
    print(head)
    print(f"wrote {', '.join(str(p) for p in out.values())}")
    return out
