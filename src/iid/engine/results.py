"""What a run leaves behind: results.json / results.csv (test metrics per test set, in/cross-dataset),
predictions/<set>.csv (every scored frame with its video key), and the table printed at the end.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# (results key, table header); ACC/LogLoss/EER/AP are video-level here, results.json has both levels
TABLE_COLUMNS = (("video_auc", "video AUC"), ("frame_auc", "frame AUC"), ("video_acc", "ACC"),
                 ("video_logloss", "LogLoss"), ("video_eer", "EER"), ("video_ap", "AP"))


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN
    return x


def write_results(
    out_dir: Path,
    results: Mapping[str, Mapping[str, float]],
    train_set: str | None,
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """results.json (meta + per test set metrics) and results.csv (one row per test set)."""
    from iid.metrics import METRIC_KEYS
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, res in results.items():
        kind = "in-dataset" if name == train_set else "cross-dataset"
        rows.append({"test_set": name, "kind": kind, **{k: _clean(v) for k, v in res.items()}})
    doc = {**meta, "test": {r["test_set"]: r for r in rows}}
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    fields = ["test_set", "kind", "videos", "frames", *METRIC_KEYS]
    with open(out_dir / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    return doc


def write_predictions(out_dir: Path, name: str, preds: Mapping[str, Any], videos: Sequence[str]) -> Path:
    """predictions/<set>.csv: video key, frame row, label, fake probability per scored frame."""
    d = out_dir / "predictions"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "row", "label", "prob"])
        for row, prob, label, vid in zip(preds["row"].tolist(), preds["prob"].tolist(), preds["label"].tolist(),
                                         preds["video"].tolist()):  # fmt: skip
            w.writerow([videos[vid] if vid < len(videos) else vid, row, label, f"{prob:.8g}"])
    return path


def print_table(doc: Mapping[str, Any], title: str) -> None:
    """The results as a rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, caption="ACC (at 0.5), LogLoss, EER, AP: video level; frame level in results.json")
    for col in ("test set", "kind", "videos", "frames", *(h for _, h in TABLE_COLUMNS)):
        t.add_column(col, justify="left" if col in ("test set", "kind") else "right")
    for name, r in doc["test"].items():
        vals = [f"{r[c]:.4f}" if isinstance(r.get(c), float) else "n/a" for c, _ in TABLE_COLUMNS]
        t.add_row(name, r["kind"], str(r.get("videos", "")), str(r.get("frames", "")), *vals)
    Console(file=sys.stdout, width=max(120, Console().width)).print(t)
