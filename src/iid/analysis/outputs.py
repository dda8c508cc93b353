"""Where an analysis writes: `<out>/<analysis>/` holds `<analysis>.json` (the numbers and the protocol),
CSV tables and PNG figures; with `logger.wandb` the same go to a W&B run (offline unless logged in).

The notebooks and `load` read these files back, so the layout is the analyses' interface.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _plain(x: Any) -> Any:
    """JSON-safe: numpy scalars and arrays become Python values, NaN becomes null."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        return _plain(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


class Outputs:
    """Files of one analysis run; `finish()` sends them to W&B when asked."""

    def __init__(self, folder: Path, analysis: str) -> None:
        self.folder = Path(folder)
        self.analysis = analysis
        self.folder.mkdir(parents=True, exist_ok=True)
        self.figures: dict[str, Path] = {}
        self.tables: dict[str, Path] = {}

    def table(self, stem: str, rows: Sequence[Mapping[str, Any]]) -> Path:
        path = self.folder / f"{stem}.csv"
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            for r in rows:
                w.writerow({k: _plain(v) for k, v in r.items()})
        self.tables[stem] = path
        return path

    def figure(self, stem: str, fig: Any, dpi: int = 120) -> Path:
        import matplotlib.pyplot as plt

        path = self.folder / f"{stem}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        self.figures[stem] = path
        return path

    def write_json(self, doc: Mapping[str, Any]) -> Path:
        path = self.folder / f"{self.analysis}.json"
        path.write_text(json.dumps(_plain(doc), indent=2) + "\n")
        return path

    def to_wandb(self, logger: Mapping[str, Any], doc: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        """One W&B run per analysis: figures as images, tables, the summary numbers."""
        from iid.engine.loggers import LoggerSettings, wandb_mode
        from iid.settings import settings

        s = settings(LoggerSettings, "logger", logger)
        if not s.wandb:
            return
        import os

        import wandb

        mode = wandb_mode()
        os.environ.setdefault("WANDB_SILENT", "true")
        run = wandb.init(project=s.project, entity=s.entity, group=s.group, job_type=s.job_type or "analysis",
                         name=s.name or f"analyze-{self.analysis}", tags=list(s.tags), dir=str(self.folder),
                         mode=mode, config=_plain(dict(config)), reinit="finish_previous")  # fmt: skip
        try:
            run.log({f"{self.analysis}/{k}": wandb.Image(str(p)) for k, p in self.figures.items()})
            for k, p in self.tables.items():
                with p.open() as f:
                    rows = list(csv.reader(f))
                if rows:
                    run.log({f"{self.analysis}/{k}": wandb.Table(columns=rows[0], data=rows[1:])})
            run.summary.update(_flat(_plain(doc.get("summary", {})), self.analysis))
        finally:
            run.finish()


def _flat(d: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(d, Mapping):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}/{k}"))
    return out


def merge(folders: Sequence[str | Path], out: str | Path, analysis: str) -> Path:
    """Runs of one analysis (one per checkpoint, in parallel, or a data set added later) into one
    folder, as if they had been one run: per (model, data set) the later folder wins, CSV rows are
    kept for the entries that won, and the figure is redrawn. The protocols must be the same."""
    import shutil

    import matplotlib

    matplotlib.use("Agg")
    from iid.analysis import ANALYSES

    docs = [load(f, analysis) for f in folders]
    if any(d["protocol"] != docs[0]["protocol"] for d in docs):
        raise ValueError(f"cannot merge {analysis} runs with different protocols")
    res = Outputs(Path(out), analysis)
    doc = dict(docs[0])
    owner: dict[tuple[str, str], int] = {}  # (model, data set or group) -> index of the folder that wins
    for key in ("summary", "results"):
        doc[key] = {}
        for i, d in enumerate(docs):
            for model, per in d.get(key, {}).items():
                doc[key].setdefault(model, {}).update(per)
                if key == "results":
                    owner.update({(model, s): i for s in per})
    doc["checkpoints"] = {k: v for d in docs for k, v in d.get("checkpoints", {}).items()}
    doc["seconds"] = sum(d.get("seconds", 0) for d in docs)
    doc["log"] = [line for d in docs for line in d.get("log", [])]
    doc["merged_from"] = [str(f) for f in folders]
    for stem in docs[0]["files"]["tables"]:
        rows = []
        for i, f in enumerate(folders):
            rows += [r for r in read_table(_folder(f, analysis), stem)
                     if owner.get((r.get("model"), r.get("set", r.get("group")))) == i]  # fmt: skip
        res.table(stem, rows)
    if analysis == "visual":  # one figure per checkpoint: copy them
        doc["figures"] = {}
        for f, d in zip(folders, docs):
            for model, name in d["figures"].items():
                stem = f"visual_{len(doc['figures'])}"
                shutil.copy(_folder(f, analysis) / name, res.folder / f"{stem}.png")
                doc["figures"][model] = f"{stem}.png"
                res.figures[stem] = res.folder / f"{stem}.png"
    else:
        res.figure(analysis, ANALYSES[analysis][0].plot(read_table(res.folder, analysis)))
    doc["files"] = {"figures": {k: p.name for k, p in res.figures.items()}, "tables": {k: p.name for k, p in res.tables.items()}}
    return res.write_json(doc)


def _folder(folder: str | Path, analysis: str) -> Path:
    folder = Path(folder)
    return folder if (folder / f"{analysis}.json").is_file() else folder / analysis


def load(folder: str | Path, analysis: str) -> dict[str, Any]:
    """The JSON document an analysis wrote to `<folder>` (or `<folder>/<analysis>`)."""
    folder = Path(folder)
    for cand in (folder / f"{analysis}.json", folder / analysis / f"{analysis}.json"):
        if cand.is_file():
            return json.loads(cand.read_text())
    raise FileNotFoundError(f"no {analysis}.json in {folder} or {folder / analysis}: run python -m iid.analyze {analysis} ...")


def read_table(folder: str | Path, stem: str) -> list[dict[str, str]]:
    """A CSV table an analysis wrote, as a list of rows (strings; the plotting helpers convert)."""
    folder = Path(folder)
    for cand in (folder / f"{stem}.csv", *folder.glob(f"*/{stem}.csv")):
        if cand.is_file():
            with cand.open(newline="") as f:
                return list(csv.DictReader(f))
    raise FileNotFoundError(f"no {stem}.csv under {folder}")
