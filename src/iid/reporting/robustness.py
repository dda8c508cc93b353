"""Table 4 (robustness) from a sweep of `iid.evaluate` over perturbations and levels.

    python -m iid.evaluate -m ckpt=<best.ckpt>[,<other.ckpt>] perturb=saturation,contrast,occlusion,noise,blur,pixelation,compression \
        perturb.level=1,2,3,4,5 hydra.sweep.dir=<dir>
    python -m iid.report sweep=<dir>            # finds the evaluate jobs and writes this table

A cell is one checkpoint's video-level AUC on one test set under one perturbation, averaged over the
levels (as the compared papers report it), with a 95% bootstrap interval over test videos (the same
resamples for every level, iid.reporting.stats); the Avg column averages the six image perturbations of the
paper (re-compression, the seventh, is ours and is reported beside them, outside the average). The
paper's numbers (conf/experiment/paper/table4.csv) follow as their own rows. report.png draws AUC
against level per perturbation.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from iid.reporting import stats
from iid.reporting.figures import pyplot
from iid.reporting.tables import PAPER_DIR, Job, column_videos

PAPER_SIX = ("saturation", "contrast", "occlusion", "noise", "blur", "pixelation")
ORDER = (*PAPER_SIX, "compression")


def evaluate_jobs(sweep: Path) -> list[tuple[Path, str, str, int, dict]]:
    """(job dir, checkpoint label, perturbation, level, results) of every perturbed evaluate job."""
    out = []
    for res in sorted(sweep.rglob("results.json")):
        doc = json.loads(res.read_text())
        p = doc.get("perturb") or {}
        if not p or p.get("name") in (None, "none") or "checkpoint" not in doc:
            continue
        ckpt = Path(doc["checkpoint"])
        label = f"{ckpt.parent.parent.name}/{ckpt.name}" if ckpt.parent.name == "checkpoints" else str(ckpt)
        out.append((res.parent, label, str(p["name"]), int(p.get("level", 0)), doc))
    return out


def _job(path: Path) -> Job:
    return Job(path, None, None, True, None)


def build(sweep: Path, n_boot: int = 1000) -> dict:
    jobs = evaluate_jobs(sweep)
    by = defaultdict(list)  # (checkpoint, test set, perturbation) -> [(level, job dir)]
    for path, label, name, level, doc in jobs:
        for test_set in doc.get("test", {}):
            by[(label, test_set, name)].append((level, path))
    cells, curves = {}, {}
    for (label, test_set, name), items in by.items():
        items.sort()
        v = column_videos([_job(p) for _, p in items], test_set)  # each level is one "seed" of the cell
        if v is None:
            continue
        cells[(label, test_set, name)] = (stats.cell(v, "video", n_boot), v)
        curves[(label, test_set, name)] = [(lvl, stats.auc(v.scores[i], v.labels)) for i, (lvl, _) in enumerate(items)]
    for label, test_set in {(k[0], k[1]) for k in cells}:
        parts = [cells[(label, test_set, n)][1] for n in PAPER_SIX if (label, test_set, n) in cells]
        if len(parts) == len(PAPER_SIX) and all(len(p.labels) == len(parts[0].labels) for p in parts):
            joint = stats.Videos(parts[0].labels, np.concatenate([p.scores for p in parts]))
            cells[(label, test_set, "Avg")] = (stats.cell(joint, "video", n_boot), joint)
    return {"cells": {k: c for k, (c, _) in cells.items()}, "curves": curves}


def _paper() -> dict[tuple[str, str], float]:
    with open(PAPER_DIR / "table4.csv", newline="") as f:
        return {(r["row"], r["column"]): float(r["value"]) for r in csv.DictReader(f)}


def markdown(t: dict) -> str:
    cols = [*PAPER_SIX, "Avg", "compression"]
    lines = ["# Table 4: robustness (video-level AUC, mean over levels 1-5, 95% bootstrap interval over test videos)", "",
             "| checkpoint | test set | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]  # fmt: skip
    for label, test_set in sorted({(k[0], k[1]) for k in t["cells"]}):
        vals = []
        for c in cols:
            cell = t["cells"].get((label, test_set, c))
            vals.append(f"{cell.mean:.3f} [{cell.low:.3f}, {cell.high:.3f}]" if cell else "—")
        lines.append(f"| {label} | {test_set} | " + " | ".join(vals) + " |")
    paper = _paper()
    for row in dict.fromkeys(r for r, _ in paper):
        lines.append(f"| paper: {row} | ffpp | " + " | ".join(f"{paper[(row, c)]:.3f}" if (row, c) in paper else "—"
                                                           for c in cols) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(t: dict, path: Path) -> None:
    plt = pyplot()
    names = [n for n in ORDER if any(k[2] == n for k in t["curves"])]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(2.6 * max(1, len(names)), 3.0), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], names):
        for (label, test_set, n), pts in sorted(t["curves"].items()):
            if n == name:
                ax.plot(*zip(*pts), marker="o", label=f"{label} ({test_set})")
        ax.set_title(name)
        ax.set_xlabel("level")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("video AUC")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(sweep: Path, n_boot: int = 1000) -> dict[str, Path] | None:
    """Write report.md / report.csv / report.png for a robustness sweep; None if it holds none."""
    if not evaluate_jobs(sweep):
        return None
    t = build(sweep, n_boot)
    out = {"md": sweep / "report.md", "csv": sweep / "report.csv", "png": sweep / "report.png"}
    md = markdown(t)
    out["md"].write_text(md)
    with open(out["csv"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["checkpoint", "test_set", "perturbation", "mean_over_levels", "ci_low", "ci_high", "levels", "videos"])
        for (label, test_set, name), c in sorted(t["cells"].items()):
            w.writerow([label, test_set, name, c.mean, c.low, c.high, c.seeds, c.videos])
    plot(t, out["png"])
    print(md)
    return out
