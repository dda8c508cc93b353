"""trainer=ddp on two CPU processes (gloo): what multi-GPU training does, checkable without GPUs.

The runs are debug=smoke on the session's tiny synthetic stores, in fp32 (the ddp preset's bf16-mixed
is emulated on CPUs without bf16 units, ~10x slower), through the real CLI: Lightning starts rank 1 as
a second `python -m iid.train` with the same command line.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from iid.metrics import detection_metrics

DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]


def cli_env() -> dict[str, str]:
    """This process's environment for a CLI run elsewhere: the iid imported here (a relative PYTHONPATH
    would not reach it from another folder), warnings as a user sees them."""
    import iid

    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    env.pop("PYTHONWARNINGS", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(iid.__file__).resolve().parents[1]),
                                                    env.get("PYTHONPATH")) if p)  # fmt: skip
    return env


def metrics_of(predictions: Path) -> dict[str, float]:
    """detection_metrics of a predictions/<set>.csv (the gathered frames written by rank 0)."""
    with open(predictions) as f:
        rows = list(csv.DictReader(f))
    keys = sorted({r["video"] for r in rows})
    assert len({r["row"] for r in rows}) == len(rows)  # every frame once, though two ranks scored them
    return detection_metrics(torch.tensor([float(r["prob"]) for r in rows], dtype=torch.float64),
                             torch.tensor([int(r["label"]) for r in rows]),
                             torch.tensor([keys.index(r["video"]) for r in rows]))  # fmt: skip


@pytest.mark.slow
def test_two_cpu_ranks_resumed_after_sigkill_end_at_the_same_step_and_the_results_are_the_gathered_predictions(
        tiny_base, tmp_path):  # fmt: skip
    """One killed run and its resumption (a clean run would repeat the resumed run's fit and test: the
    checks on the second run's log and results are those of an uninterrupted one)."""
    # 2 epochs of 4 batches over 2 ranks: 2 steps an epoch, 4 in all; last.ckpt after every step
    args = [*tiny_base, *DDP, "trainer.sync_batchnorm=true", "budget.epochs=2", "budget.batches_per_epoch=4",
            "checkpoint.every_n_steps=1", "data.test_sets=[ffpp,dfdc]", f"run_dir={tmp_path / 'run'}"]  # fmt: skip
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    cmd = [sys.executable, "-m", "iid.train", *args]
    first = subprocess.Popen(cmd, cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while not last.is_file() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # both ranks, at once, mid-training
        first.wait()
    assert last.is_file(), "no last.ckpt before the first run ended"
    step = torch.load(last, weights_only=False, map_location="cpu")["global_step"]
    assert 1 <= step < 4 and not (run_dir / "results.json").exists()
    # warnings shown as a user sees them (the cli fixture silences them)
    p = subprocess.run(cmd, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=900)
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-3000:]
    assert "resuming from" in log
    assert "MEMBER: 2/2" in log  # two processes
    assert "trainer.sync_batchnorm: off on accelerator=cpu" in log  # one info line instead of a traceback
    # no warning that does not apply: the gathered metrics are logged as such, the per-rank means synced
    assert "sync_dist" not in log and "LeafSpec" not in log and "on_after_batch_transfer" not in log, log[-3000:]
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["global_step"] == 4 and doc["epochs"] == 2  # what the uninterrupted run ends at
    for name in ("ffpp", "dfdc"):
        res, ref = doc["test"][name], metrics_of(run_dir / "predictions" / f"{name}.csv")
        assert res["frames"] == ref["frames"] == 2 * res["videos"]  # eval.test_frames=2 of every video
        for k, v in ref.items():
            assert res[k] == pytest.approx(v, abs=1e-6), (name, k)
