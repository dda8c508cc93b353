"""The files an analysis writes, and the W&B run it logs them to (offline)."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from iid.analysis.outputs import Outputs, load, read_table  # noqa: E402


def test_files_and_offline_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    out = Outputs(tmp_path / "probe", "probe")
    out.table("probe", [{"model": "binary", "set": "ffpp", "epoch": 1, "test_acc": np.float32(0.5)}])
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    out.figure("probe", fig)
    doc = {"summary": {"binary": {"ffpp": {"final_test_acc": np.float64(0.5), "chance": math.nan}}}}
    out.write_json(doc)
    assert load(tmp_path, "probe")["summary"]["binary"]["ffpp"] == {"final_test_acc": 0.5, "chance": None}
    assert read_table(tmp_path, "probe")[0]["test_acc"] == "0.5"
    out.to_wandb({"wandb": False}, doc, {})
    assert not (tmp_path / "probe" / "wandb").exists()
    out.to_wandb({"wandb": True, "project": "iid-test"}, doc, {"analysis": {"name": "probe"}})
    runs = list((tmp_path / "probe" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))
    json.loads((tmp_path / "probe" / "probe.json").read_text())
