"""A sweep folder -> the experiment's table beside the paper's numbers (Markdown, CSV; the PNG: table_plot).

`python -m iid.report sweep=multirun/<...>` (iid.reporting.write) reads every job under the folder (Hydra's multirun layout:
one sub-folder per job with .hydra/overrides.yaml, config.json, results.json, predictions/), groups
the jobs into the experiment's rows (each job's `experiment.row`) and seeds, and writes into the
sweep folder:

- report.md: per metric, a table of rows x columns; a cell is our mean over seeds with its 95%
  bootstrap interval over test videos (iid.reporting.stats), the paper's number beside it; then the paired
  differences of each row to the row the paper compares it with, on the same videos;
- report.csv: the same in long form, with the spread between seeds and the counts;
- report.png: the cells with their intervals (a line plot over `experiment.x` when rows have one,
  e.g. Fig. 8: AUC against the number of training methods; iid.reporting.table_plot).

Every number is computed from the jobs' predictions/<test set>.csv (the per-frame probabilities
evaluation wrote), so it can be traced to a file. A job that failed or never ran is a visible gap
(listed under the table), never a crash.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iid.errors import UserError
from iid.reporting import stats
from iid.settings import bounds, settings

log = logging.getLogger("iid.report")
PAPER_DIR = Path(__file__).resolve().parents[1] / "conf" / "experiment" / "paper"
SET_NAMES = {"ffpp": "FF++", "celebdf": "Celeb-DF", "dfdc": "DFDC", "dfdc_preview": "DFDC-P"}


@dataclass(frozen=True)
class ExperimentSpec:
    """The `experiment` node of an experiment config (conf/experiment/<name>.yaml) and of its rows."""

    name: str = "experiment"
    title: str = ""
    row: str | None = None  # this job's row (set by its row config)
    rows: tuple[str, ...] = ()  # the table's rows, in order
    columns: tuple[str, ...] = ()  # test sets, or <set>/<method>[+<method>...]: the reals and those methods' fakes
    metrics: tuple[str, ...] = field(default=("video_auc",), metadata=bounds(choices=("video_auc", "frame_auc")))
    compare: dict | None = None  # row -> the row it is compared with (paired difference); `*` matches any text
                                 # ("*: ours": "*: binary" compares every "<x>: ours" with "<x>: binary")
    paper: str | None = None  # conf/experiment/paper/<paper>.csv: table,row,column,metric,level,value
    paper_backbone: str | None = None  # the network of the paper's numbers when rows do not name it: a run
                                        # with another (a lighter one at scale=mini) is flagged in the table
    x: float | None = None  # this job's position on the figure's x axis
    series: str | None = None  # this job's line in the figure
    xlabel: str | None = None
    backbones: dict | None = None  # scale -> the networks an experiment sweeps ("a,b"), by scale_name
    unavailable: dict | None = None  # row -> why the suite cannot run it (shown as the reason of its gap)
    test_sets: dict | None = None  # scale -> the test sets its jobs score, where that differs by scale


@dataclass
class Job:
    path: Path
    row: str | None
    seed: int | None
    done: bool
    spec: ExperimentSpec | None
    backbone: str | None = None
    init: str | None = None  # initial weights: "ImageNet" (hub, package or file) or "random"


def initial_weights(config: dict | None) -> str | None:
    """How a run's network started: the papers' all start from ImageNet."""
    if not config or "backbone" not in config:
        return None
    pretrained = (config.get("backbone") or {}).get("pretrained")
    return "random" if pretrained in (False, None, "false", "False", "") else "ImageNet"


def _overrides(job_dir: Path) -> dict[str, str]:
    import yaml

    try:
        items = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    except (OSError, yaml.YAMLError):
        return {}
    return dict(str(o).lstrip("+~").split("=", 1) for o in items if "=" in str(o))


def find_jobs(sweep: Path) -> list[Job]:
    """Every job folder under the sweep: finished (results.json) or not (started, failed)."""
    dirs = {p.parent for p in sweep.rglob("results.json")} | {p.parent.parent for p in sweep.rglob(".hydra/overrides.yaml")}
    jobs = []
    for d in sorted(dirs):
        config = None
        try:
            config = json.loads((d / "config.json").read_text())
        except (OSError, ValueError):
            pass
        spec = settings(ExperimentSpec, "experiment", config["experiment"]) if config and config.get("experiment") else None
        over = _overrides(d)
        row = spec.row if spec else over.get("experiment.row") or over.get("row")
        seed = config.get("seed") if config else over.get("seed")
        done = (d / "results.json").is_file()
        backbone = (config.get("backbone") or {}).get("name") if config else over.get("backbone")
        jobs.append(Job(d, row, int(seed) if seed is not None else None, done, spec, backbone, initial_weights(config)))
    return jobs


def _read_predictions(path: Path, methods: set[str] | None) -> tuple[dict[str, float], dict[str, int], dict[str, float], dict[str, str]]:
    """Per video: mean fake probability and label; per frame (video|row): probability and its video."""
    frames: dict[str, list[float]] = defaultdict(list)
    labels: dict[str, int] = {}
    frame_prob: dict[str, float] = {}
    frame_video: dict[str, str] = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            key = r["video"]
            method = key.split("/")[1] if key.count("/") >= 2 else None
            if methods is not None and int(r["label"]) == 1 and method not in methods:
                continue
            p = float(r["prob"])
            frames[key].append(p)
            labels[key] = int(r["label"])
            fk = f"{key}|{r['row']}"
            frame_prob[fk], frame_video[fk] = p, key
    return {k: float(np.mean(v)) for k, v in frames.items()}, labels, frame_prob, frame_video


def column_videos(jobs: Sequence[Job], column: str) -> stats.Videos | None:
    """The column's test videos as scored by each (finished) job of one row."""
    test_set, _, method = column.partition("/")
    per_job = []
    for j in jobs:
        path = j.path / "predictions" / f"{test_set}.csv"
        if j.done and path.is_file():
            per_job.append(_read_predictions(path, set(method.split("+")) if method else None))
    if not per_job:
        return None
    keys, scores = stats.align([p[0] for p in per_job])
    fkeys, fscores = stats.align([p[2] for p in per_job])
    labels = np.array([per_job[0][1][k] for k in keys])
    if len(keys) == 0 or labels.min() == labels.max():
        return None
    index = {k: i for i, k in enumerate(keys)}
    fvideo = np.array([index[per_job[0][3][k]] for k in fkeys], dtype=np.int64)
    return stats.Videos(labels, scores, fscores, fvideo, labels[fvideo])


def read_paper(spec: ExperimentSpec) -> dict[tuple[str, str, str], float]:
    """(row, column, metric) -> the paper's number (metric as ours: video_auc, frame_auc)."""
    if not spec.paper:
        return {}
    path = PAPER_DIR / f"{spec.paper}.csv"
    if not path.is_file():
        raise UserError(f"experiment.paper={spec.paper}: no {path}")
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            out[(r["row"], r["column"], f"{r['level']}_{r['metric']}")] = float(r["value"])
    return out


def expand_compare(compare: dict | None, rows: Sequence[str]) -> dict[str, str]:
    """The compare map over the rows present, with `*` patterns resolved."""
    import re

    out = {}
    for row, ref in (compare or {}).items():
        if "*" not in row:
            out[row] = ref
            continue
        pattern = re.compile("^" + re.escape(row).replace(r"\*", "(.*)") + "$")
        for r in rows:
            m = pattern.match(r)
            if m and ref.replace("*", m.group(1)) in rows:
                out[r] = ref.replace("*", m.group(1))
    return out


@dataclass
class Table:
    spec: ExperimentSpec
    cells: dict[tuple[str, str, str], stats.Cell]  # (row, column, metric)
    diffs: dict[tuple[str, str, str], stats.Cell]  # (row, column, metric) vs spec.compare[row]
    paper: dict[tuple[str, str, str], float]
    gaps: list[str]
    x: dict[str, tuple[float | None, str | None]]  # row -> (x, series)
    backbones: dict[str, list[str]] = field(default_factory=dict)  # row -> the networks its jobs ran
    inits: dict[str, list[str]] = field(default_factory=dict)  # row -> their initial weights
    paper_backbones: dict[str, str] = field(default_factory=dict)  # row -> the paper's network for it

    def foreign_backbones(self) -> list[str]:
        """Networks the runs used that are not the one the paper's numbers are for."""
        want = self.spec.paper_backbone
        return sorted({b for bs in self.backbones.values() for b in bs if want and b != want})

    def heading(self) -> str:
        """The table's title, naming the networks the runs used where they are not the paper's (a title
        such as "Fig. 8 ... (ResNet-34)" would otherwise claim the paper's network for them)."""
        title = self.spec.title or self.spec.name
        foreign = self.foreign_backbones()
        return f"{title}; these runs: {', '.join(foreign)}" if foreign else title

    def unlike_paper(self) -> dict[str, str]:
        """Rows whose runs' network or initial weights differ from the paper's (ImageNet-initialised
        `paper_backbones[row]`), with what they ran."""
        out = {}
        for row, nets in self.backbones.items():
            want, inits = self.paper_backbones.get(row), self.inits.get(row, [])
            if (want and any(n != want for n in nets)) or "random" in inits:
                out[row] = f"{'+'.join(nets)} ({'+'.join(inits) or '?'})" + (f", paper: {want} (ImageNet)" if want else "")
        return out


def build_table(jobs: Sequence[Job], n_boot: int = 1000) -> Table:
    specs = [j.spec for j in jobs if j.spec is not None]
    if not specs:
        raise UserError("no job of an experiment under this folder (no config.json with an experiment node): "
                        "run `python -m iid.train -m experiment=<name>` first")  # fmt: skip
    spec = specs[0]
    by_row: dict[str, list[Job]] = defaultdict(list)
    for j in jobs:
        if j.row is not None:
            by_row[j.row].append(j)
    # rows the sweep ran beyond the paper's (e.g. a lighter backbone at scale=mini) are shown after them
    rows = [*spec.rows, *sorted(r for r in by_row if r not in spec.rows)]
    spec = dataclasses.replace(spec, rows=tuple(rows), compare=expand_compare(spec.compare, rows))
    seeds = sorted({j.seed for j in jobs if j.seed is not None})
    why = spec.unavailable or {}
    gaps = [f"{r}: no job ran" + (f" ({why[r]})" if r in why else "") for r in spec.rows if r not in by_row]
    for row, js in by_row.items():
        missing = sorted(set(seeds) - {j.seed for j in js if j.done})
        if missing:
            gaps.append(f"{row}: seed(s) {missing} did not finish ({', '.join(str(j.path) for j in js if not j.done) or 'never started'})")
    cells, diffs, videos = {}, {}, {}
    for row in spec.rows:
        for col in spec.columns:
            v = column_videos(by_row.get(row, []), col)
            videos[(row, col)] = v
            for m in spec.metrics:
                if v is not None:
                    cells[(row, col, m)] = stats.cell(v, m.split("_")[0], n_boot)
    for row, ref in (spec.compare or {}).items():
        for col in spec.columns:
            a, b = videos.get((row, col)), videos.get((ref, col))
            if a is None or b is None:
                continue
            a, b = _common(a, b)
            for m in spec.metrics:
                if a is not None:
                    diffs[(row, col, m)] = stats.paired_difference(a, b, m.split("_")[0], n_boot)
    xs = {}
    for row, js in by_row.items():
        s = next((j.spec for j in js if j.spec), None)
        xs[row] = (s.x, s.series) if s else (None, None)
    backbones = {row: sorted({j.backbone for j in js if j.backbone}) for row, js in by_row.items()}
    inits = {row: sorted({j.init for j in js if j.init}) for row, js in by_row.items()}
    # a row config may name the paper's network for its row (Table 3's rows differ in it)
    paper_nets = {row: next((j.spec.paper_backbone for j in js if j.spec and j.spec.paper_backbone), None)
                  for row, js in by_row.items()}  # fmt: skip
    return Table(spec, cells, diffs, read_paper(spec), gaps, xs, backbones, inits,
                 {r: n for r, n in paper_nets.items() if n})


def _common(a: stats.Videos, b: stats.Videos) -> tuple[stats.Videos | None, stats.Videos | None]:
    """Two rows' videos restricted to the ones both scored (they normally agree)."""
    if len(a.labels) == len(b.labels):
        return a, b
    return None, None


def _fmt(c: stats.Cell | None, signed: bool = False) -> str:
    if c is None or math.isnan(c.mean):
        return "—"
    sign = "+" if signed else ""  # a difference always shows its sign, so +0.011 reads unlike an AUC
    return f"{c.mean:{sign}.3f} [{c.low:{sign}.3f}, {c.high:{sign}.3f}]"


def column_title(col: str) -> str:
    test_set, _, method = col.partition("/")
    return f"{SET_NAMES.get(test_set, test_set)}{' ' + method if method else ''}"


def markdown(t: Table) -> str:
    s = t.spec
    seeds = sorted({c.seeds for c in t.cells.values()})  # seeds per cell: one number unless some runs failed
    n_seeds = f"{'/'.join(map(str, seeds)) or 0} seed{'' if seeds == [1] else 's'}"
    lines = [f"# {t.heading()}", "",
             f"Each cell: our mean over seeds ({n_seeds}) with its 95% bootstrap "
             "interval over test videos (stratified, the same resamples for every seed); the paper's number "
             "beside it. Spread between seeds: report.csv (seed_sd).", ""]  # fmt: skip
    foreign = t.foreign_backbones()
    if foreign:
        lines += [f"**Not the paper's network:** these runs used {', '.join(foreign)}; the paper's numbers are "
                  f"for {s.paper_backbone}, so the two columns compare different networks.", ""]  # fmt: skip
    unlike = t.unlike_paper()
    if unlike:
        lines += ["**†** network or initial weights not the paper's (the papers' networks start from ImageNet): "
                  + "; ".join(f"{row}: {what}" for row, what in unlike.items()) + ".", ""]  # fmt: skip
    paper_head = f"paper ({s.paper_backbone})" if foreign else "paper"
    for m in s.metrics:
        level, metric = m.split("_", 1)
        lines += [f"## {level}-level {metric.upper()}", ""]
        head = ["row"] + [f"{column_title(c)} {w}" for c in s.columns for w in ("ours", paper_head)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in s.rows:
            vals = []
            for c in s.columns:
                p = t.paper.get((row, c, m))
                vals += [_fmt(t.cells.get((row, c, m))), f"{p:.4f}" if p is not None else "—"]
            lines.append(f"| {row}{' †' if row in unlike else ''} | " + " | ".join(vals) + " |")
        lines.append("")
        if s.compare:
            lines += [f"Paired differences ({level} {metric.upper()}, same test videos, 95% interval):", ""]
            head = ["row", "vs"] + [f"{column_title(c)} Δ ours" for c in s.columns] + [f"{column_title(c)} Δ paper" for c in s.columns]
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            for row, ref in s.compare.items():
                ours = [_fmt(t.diffs.get((row, c, m)), signed=True) for c in s.columns]
                paper = []
                for c in s.columns:
                    a, b = t.paper.get((row, c, m)), t.paper.get((ref, c, m))
                    paper.append(f"{a - b:+.4f}" if a is not None and b is not None else "—")
                lines.append(f"| {row} | {ref} | " + " | ".join(ours + paper) + " |")
            lines.append("")
    if t.gaps:
        lines += ["Gaps (jobs that did not finish are left out, never guessed):", ""] + [f"- {g}" for g in t.gaps] + [""]
    return "\n".join(lines)


def write_csv(t: Table, path: Path) -> None:
    fields = ["row", "column", "metric", "mean", "ci_low", "ci_high", "seed_sd", "seeds", "videos", "paper",
              "compared_with", "diff", "diff_low", "diff_high", "x", "series", "backbone", "init", "paper_backbone"]  # fmt: skip
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for row in t.spec.rows:
            for col in t.spec.columns:
                for m in t.spec.metrics:
                    c, d = t.cells.get((row, col, m)), t.diffs.get((row, col, m))
                    x, series = t.x.get(row, (None, None))
                    w.writerow({
                        "row": row, "column": col, "metric": m, "paper": t.paper.get((row, col, m), ""),
                        "mean": c.mean if c else "", "ci_low": c.low if c else "", "ci_high": c.high if c else "",
                        "seed_sd": "" if not c or math.isnan(c.seed_sd) else c.seed_sd,
                        "seeds": c.seeds if c else 0, "videos": c.videos if c else 0,
                        "compared_with": (t.spec.compare or {}).get(row, ""), "diff": d.mean if d else "",
                        "diff_low": d.low if d else "", "diff_high": d.high if d else "",
                        "x": "" if x is None else x, "series": series or "",
                        "backbone": "+".join(t.backbones.get(row, [])), "init": "+".join(t.inits.get(row, [])),
                        "paper_backbone": t.paper_backbones.get(row) or t.spec.paper_backbone or "",
                    })  # fmt: skip


__all__ = ["ExperimentSpec", "Table", "build_table", "find_jobs", "markdown", "write_csv"]
