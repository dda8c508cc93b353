"""The run cache: rows of two experiments with the same training share one training; a change of a
training key, a deleted run and cache=false each mean training again."""

from __future__ import annotations

import filecmp
import json
import shutil
from pathlib import Path

import pytest

from iid.engine import runcache
from iid.engine.config import plain_config


def _rows(tiny_base: list[str], cache: Path) -> list[str]:
    """Tiny overrides where an experiment's scale=mini looks for data, with the cache on at `cache`."""
    stores = next(o.split("=", 1)[1] for o in tiny_base if o.startswith("paths.stores="))
    return [*tiny_base, f"data.store_root={stores}/synthetic", "seed=0", "backbone=test_resnet", f"cache={cache}"]


TABLE2_OURS = ["experiment=table2", "row=table2/ours"]
TABLE3_OURS = ["experiment=table3", "row=table3/ours_r34"]


def test_fingerprint_ignores_labels_and_outputs_not_training_keys(compose_cfg, tmp_path):
    base = ["debug=smoke", "backbone=test_resnet"]
    t2, t3 = (plain_config(compose_cfg([*base, *rows])) for rows in (TABLE2_OURS, TABLE3_OURS))
    assert t2["experiment"]["row"] != t3["experiment"]["row"]
    assert runcache.fingerprint(t2) == runcache.fingerprint(t3)
    outputs = plain_config(compose_cfg([*base, *TABLE2_OURS, f"run_dir={tmp_path}", "logger=wandb",
                                        "trainer.progress_bar=rich", "cache=elsewhere"]))  # fmt: skip
    assert runcache.fingerprint(outputs) == runcache.fingerprint(t2)
    for change in ("seed=1", "da=off", "budget.epochs=2", "data.test_sets=[ffpp]", "eval.test_frames=3",
                   "backbone.pretrained=true", "optim.lr=0.5"):  # fmt: skip
        other = plain_config(compose_cfg([*base, *TABLE2_OURS, change]))
        assert runcache.fingerprint(other) != runcache.fingerprint(t2), change


def test_cache_setting(compose_cfg):
    assert runcache.cache_root(plain_config(compose_cfg([]))) == Path("runs/cache")
    assert runcache.cache_root(plain_config(compose_cfg(["debug=smoke"]))) is None  # smoke runs run
    assert runcache.cache_root({"cache": True}) == Path("runs/cache")
    assert runcache.cache_root({"cache": "x/y"}) == Path("x/y")


@pytest.mark.slow
def test_a_row_of_another_experiment_reuses_a_finished_run(tiny_base, compose_cfg, tmp_path, monkeypatch, capsys):
    from iid.engine import jobs
    from iid.reporting.tables import build_table, find_jobs
    from iid.train import run

    cache = tmp_path / "cache"
    over = _rows(tiny_base, cache)
    first = tmp_path / "table2" / "0"
    done = run(compose_cfg([*over, *TABLE2_OURS, f"run_dir={first}"]))
    assert done["seconds"]["total"] > 0 and "reused" not in done
    entries = list(cache.glob("*.json"))
    assert len(entries) == 1 and json.loads(entries[0].read_text())["run_dir"] == str(first.resolve())

    def no_training(*args, **kwargs):
        raise AssertionError("trained although a finished run had the same config")

    monkeypatch.setattr(jobs, "_train_locked", no_training)
    second = tmp_path / "table3" / "0"
    doc = run(compose_cfg([*over, *TABLE3_OURS, f"run_dir={second}"]))
    assert f"reusing finished run {first.resolve()} (same config)" in capsys.readouterr().out
    assert doc["reused"]["from"] == str(first.resolve()) and doc["reused"]["seconds_saved"] > 0
    assert doc["test"] == done["test"] and doc["experiment"] == {"name": "table3", "row": "Ours (ResNet-34)"}
    for name in done["test"]:
        assert filecmp.cmp(first / "predictions" / f"{name}.csv", second / "predictions" / f"{name}.csv", shallow=False)
    link = second / "checkpoints" / "best.ckpt"
    assert link.is_symlink() and link.resolve() == (first / "checkpoints" / "best.ckpt").resolve()
    assert not (second / "csv").exists()  # no training log: nothing trained
    assert runcache.saved_seconds([first, second]) == (1, pytest.approx(doc["reused"]["seconds_saved"]))
    # the report reads the reused job as a finished job of its own row
    jobs_found = find_jobs(tmp_path / "table3")
    assert [(j.row, j.done) for j in jobs_found] == [("Ours (ResNet-34)", True)]
    table = build_table(jobs_found, n_boot=100)
    assert ("Ours (ResNet-34)", "ffpp", "video_auc") in table.cells
    # the same folder again: finished, returned as it is (not re-linked, not an error)
    assert run(compose_cfg([*over, *TABLE3_OURS, f"run_dir={second}"]))["reused"] == doc["reused"]

    # another seed is another training; so is any job once the cached run is deleted; cache=false never looks
    assert runcache.lookup(plain_config(compose_cfg([*over, *TABLE3_OURS, "seed=1"])), tmp_path / "x") is None
    assert runcache.lookup(plain_config(compose_cfg([*over, *TABLE3_OURS, "cache=false"])), tmp_path / "x") is None
    assert runcache.lookup(plain_config(compose_cfg([*over, *TABLE3_OURS])), tmp_path / "x") is not None
    shutil.rmtree(first)
    monkeypatch.setattr(jobs, "_train_locked", lambda *a, **k: {"trained": True, "seconds": {}})
    again = run(compose_cfg([*over, *TABLE3_OURS, f"run_dir={tmp_path / 'table3b'}"]))
    assert again["trained"] and not list(cache.glob("*.json"))  # the stale entry is dropped
