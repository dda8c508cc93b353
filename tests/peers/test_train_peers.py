"""The peers train on the embedded benchmark through the one engine, and their checkpoints evaluate
with `iid.evaluate` to the same numbers: ETD (model=etd), SBI (model=binary sbi=on) and Ours+SBI
(model=caddm sbi=on, the pseudo-fakes' boxes reaching the ADM)."""

from __future__ import annotations

import csv
import json

import pytest

from iid.metrics import METRIC_KEYS


def _results(run_dir):
    return json.loads((run_dir / "results.json").read_text())["test"]


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        for k in (*METRIC_KEYS, "frames", "videos"):
            assert a[name][k] == b[name][k], (name, k)


def _log(run_dir) -> list[dict]:
    return list(csv.DictReader(open(run_dir / "csv" / "metrics.csv")))


def _epoch_value(rows: list[dict], key: str) -> float:
    return next(float(r[key]) for r in rows if r.get(key))


@pytest.mark.slow
def test_etd_trains_and_its_checkpoint_evaluates_through_the_cli(tiny_base, compose_cfg, cli, tmp_path):
    from iid.train import run

    run_dir = tmp_path / "etd"
    run(compose_cfg([*tiny_base, "model=etd", "model.blocks=2", "model.fusion=[32]", "data.balance=true",
                     f"run_dir={run_dir}"]))  # fmt: skip
    train = _results(run_dir)
    assert set(train) == {"ffpp", "celebdf", "dfdc"} and all(0 <= r["video_auc"] <= 1 for r in train.values())
    log = _log(run_dir)
    assert {"train/lil", "train/gil", "train/kl_local", "train/w_lil", "train/w_gil", "train/cls"} <= set(log[0])
    assert 0 < _epoch_value(log, "train/lil") <= 1
    p = cli("iid.evaluate", [f"ckpt={run_dir / 'checkpoints' / 'best.ckpt'}", f"out={tmp_path / 'ev'}"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    _same(train, json.loads((tmp_path / "ev" / "results.json").read_text())["test"])


@pytest.mark.slow
@pytest.mark.parametrize("model", ["binary", "caddm"])
def test_sbi_trains_on_real_frames_and_its_checkpoint_evaluates(tiny_base, compose_cfg, tmp_path, model):
    from iid.evaluate import evaluate
    from iid.train import run

    run_dir = tmp_path / model
    base = [o for o in tiny_base if not o.startswith("model.")]
    extra = ["model.adm.width=128"] if model == "caddm" else []
    run(compose_cfg([*base, f"model={model}", *extra, "sbi=on", "mfs=off", f"run_dir={run_dir}"]))
    log = _log(run_dir)
    assert _epoch_value(log, "aug/fake_share") == pytest.approx(0.5)  # every batch: half pseudo-fakes
    if model == "caddm":  # the ADM learns from the blended region's box, not the whole image
        assert _epoch_value(log, "aug/box_mean_area") < 0.9
        assert _epoch_value(log, "train/num_pos") > 0
    doc = evaluate(compose_cfg([f"ckpt={run_dir / 'checkpoints' / 'best.ckpt'}"], "evaluate"), tmp_path / "ev")
    _same(_results(run_dir), doc["test"])
