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
