"""iid.evaluate rebuilds the model from the checkpoint's config alone and reproduces the numbers."""

from __future__ import annotations

import json

import pytest

from iid.metrics import METRIC_KEYS


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        for k in (*METRIC_KEYS, "frames", "videos", "kind"):
            assert a[name][k] == b[name][k], (name, k)


@pytest.mark.slow
def test_evaluate_cli_reproduces_training_numbers(trained_runs, cli, tmp_path):
    run_dir = trained_runs["on"]
    # nothing of the training command line is repeated: the checkpoint holds the config
    p = cli("iid.evaluate", [f"ckpt={run_dir / 'checkpoints' / 'best.ckpt'}", f"out={tmp_path / 'ev'}"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    train = json.loads((run_dir / "results.json").read_text())["test"]
    ev = json.loads((tmp_path / "ev" / "results.json").read_text())["test"]
    _same(train, ev)
    assert (tmp_path / "ev" / ".hydra" / "config.yaml").is_file()


@pytest.mark.slow
def test_evaluate_adm_off_in_process_and_test_set_override(trained_runs, compose_cfg, tmp_path):
    from iid.evaluate import evaluate

    run_dir = trained_runs["off"]
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    doc = evaluate(compose_cfg([f"ckpt={ckpt}"], "evaluate"), tmp_path / "a")
    _same(json.loads((run_dir / "results.json").read_text())["test"], doc["test"])
    only = evaluate(compose_cfg([f"ckpt={ckpt}", "test_sets=[celebdf]"], "evaluate"), tmp_path / "b")
    assert list(only["test"]) == ["celebdf"] and only["test"]["celebdf"]["kind"] == "cross-dataset"
    assert only["test"]["celebdf"]["video_auc"] == doc["test"]["celebdf"]["video_auc"]


def test_evaluate_user_errors(cli, tmp_path):
    p = cli("iid.evaluate", [f"ckpt={tmp_path / 'nope.ckpt'}"], cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert [ln for ln in p.stderr.splitlines() if ln.startswith("error: ")][0].count("nope.ckpt") == 1


@pytest.mark.slow
def test_a_synthetic_checkpoint_on_a_real_data_set_is_cautioned(trained_runs, tiny_base, compose_cfg, tmp_path, caplog):
    from iid.evaluate import evaluate

    ckpt = trained_runs["off"] / "checkpoints" / "best.ckpt"
    stores = next(o.split("=", 1)[1] for o in tiny_base if o.startswith("paths.stores="))
    # data=ffpp is a real data set; its store here is the synthetic DFDC's (all the test needs is a store)
    real = [f"ckpt={ckpt}", "data=ffpp", f"data.store_root={stores}/synthetic", "test_sets=[dfdc]"]
    with caplog.at_level("WARNING", logger="iid.train"):
        doc = evaluate(compose_cfg(real, "evaluate"), tmp_path / "real")
    cautions = [r.getMessage() for r in caplog.records if "synthetic benchmark" in r.getMessage()]
    assert len(cautions) == 1 and "dfdc" not in cautions[0] and "ffpp" in cautions[0]
    assert doc["warning"] == cautions[0]
    assert json.loads((tmp_path / "real" / "results.json").read_text())["warning"] == cautions[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="iid.train"):  # on its own (synthetic) test sets: no caution
        same = evaluate(compose_cfg([f"ckpt={ckpt}", "test_sets=[dfdc]"], "evaluate"), tmp_path / "own")
    assert "warning" not in same and not [r for r in caplog.records if "synthetic benchmark" in r.getMessage()]
