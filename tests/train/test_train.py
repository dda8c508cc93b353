"""iid.train end to end on the tiny synthetic benchmark: results, checkpoints, resume, model selection,
user errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from iid.engine.checkpoints import CONFIG_KEY
from iid.metrics import METRIC_KEYS

TEST_SETS = {"ffpp": "in-dataset", "celebdf": "cross-dataset", "dfdc": "cross-dataset"}


@pytest.mark.slow
@pytest.mark.parametrize("adm", ["on", "off"])
def test_train_writes_results_for_every_test_set(trained_runs, adm):
    run_dir = trained_runs[adm]
    doc = json.loads((run_dir / "results.json").read_text())
    assert {k: v["kind"] for k, v in doc["test"].items()} == TEST_SETS
    for name, res in doc["test"].items():
        for k in METRIC_KEYS:
            assert isinstance(res[k], float), (name, k, res[k])
        assert 0 <= res["video_auc"] <= 1 and res["frames"] >= res["videos"] > 0
    assert doc["model"] == {"on": "caddm", "off": "binary"}[adm] and doc["seed"] == 0
    # the model tested is the best checkpoint on the validation split
    assert Path(doc["checkpoint"]).name == "best.ckpt" and doc["best_val"]["monitor"] == "val/video_auc"
    rows = list(csv.DictReader(open(run_dir / "results.csv")))
    assert [r["test_set"] for r in rows] == list(TEST_SETS)
    # per-frame predictions name videos by record key dataset/method/video_id
    pred = list(csv.DictReader(open(run_dir / "predictions" / "ffpp.csv")))
    assert len(pred) == doc["test"]["ffpp"]["frames"]
    assert len({p["video"] for p in pred}) == doc["test"]["ffpp"]["videos"]
    assert all(p["video"].startswith("ffpp/") and p["video"].count("/") == 2 for p in pred)
    # composed config in the run dir (Hydra) and the CSV log with losses and val metrics
    assert (run_dir / "config.json").is_file()
    if adm == "on":  # run through the CLI: Hydra's copy too
        assert (run_dir / ".hydra" / "config.yaml").is_file()
    header = next(csv.reader(open(run_dir / "csv" / "metrics.csv")))
    assert {"train/loss_step", "val/video_auc", "lr-Adam"} <= set(header)
    if adm == "on":
        assert {"train/num_pos", "aug/mfs_partial", "aug/mfs_global"} <= set(header)


@pytest.mark.slow
def test_checkpoint_holds_plain_config_and_loads_weights_only(trained_runs):
    for adm, run_dir in trained_runs.items():
        for name in ("best.ckpt", "last.ckpt"):
            ckpt = torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=True)
            cfg = ckpt[CONFIG_KEY]
            assert type(cfg) is dict and cfg["model"]["family"] == {"on": "caddm", "off": "binary"}[adm]
            assert cfg["backbone"]["name"] == "test_resnet" and cfg["optim"]["lr"] == pytest.approx(3.6e-4)
            assert any(k.startswith("model.adm.") for k in ckpt["state_dict"]) is (adm == "on")
            # best.ckpt is weights + config only; the optimizer state lives in last.ckpt alone
            assert ("optimizer_states" in ckpt) is (name == "last.ckpt")


class Kill(pl.Callback):
    """Stands for a killed process: raises once the run reaches `at` optimizer steps."""

    def __init__(self, at: int):
        self.at = at

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.at:
            raise RuntimeError("killed")


class KeepEpochEnd(pl.Callback):
    """Copies last.ckpt as written at the end of the first epoch (before step checkpoints replace it)."""

    def __init__(self, ckpt_dir: Path):
        self.ckpt_dir = ckpt_dir

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1:
            shutil.copy(self.ckpt_dir / "last.ckpt", self.ckpt_dir / "epoch0_end.ckpt")


@pytest.mark.slow
def test_killed_run_resumes_with_the_same_step_count(tiny_base, compose_cfg, tmp_path):
    from iid.train import run

    # 2 epochs of 2 steps, last.ckpt at every epoch end and every step
    over = [*tiny_base, "budget.epochs=2", "checkpoint.every_n_steps=1", "+trainer.limit_val_batches=1"]
    full = run(compose_cfg([*over, f"run_dir={tmp_path / 'full'}"]), test=False)
    assert full["global_step"] == 4

    # killed at step 4, in the middle of saving: last.ckpt holds step 3 (mid-epoch); running again in
    # the same run dir resumes from it and ends at the same step count
    killed = tmp_path / "killed"
    with pytest.raises(RuntimeError, match="killed"):
        run(compose_cfg([*over, f"run_dir={killed}"]), callbacks=[Kill(4), KeepEpochEnd(killed / "checkpoints")],
            test=False)  # fmt: skip
    assert torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    resumed = run(compose_cfg([*over, f"run_dir={killed}"]), test=False)
    assert resumed["global_step"] == full["global_step"]
    # the log of the steps before the kill is kept; the resumed part logs beside it
    assert (killed / "csv" / "metrics.csv").is_file() and (killed / "csv" / "resume_1" / "metrics.csv").is_file()

    # resume=PATH from the epoch-end checkpoint into another run dir: the sampler and the
    # augmentations are seeded per epoch, so training continues exactly as the uninterrupted run
    epoch_end = killed / "checkpoints" / "epoch0_end.ckpt"
    assert torch.load(epoch_end, weights_only=True)["global_step"] == 2
    other = run(compose_cfg([*over, f"run_dir={tmp_path / 'other'}", f"resume={epoch_end}"]), test=False)
    assert other["global_step"] == 4
    a, b = full["module"].state_dict(), other["module"].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_best_checkpoint_is_chosen_on_validation_not_on_test(tmp_path, compose_cfg, scripted_val):
    from iid.engine import config as C
    from iid.engine.trainer import make_trainer

    cfg = C.plain_config(compose_cfg(["budget.epochs=3", "trainer.progress_bar=none", "trainer.log_every_n_steps=1",
                                      "trainer.num_sanity_val_steps=0"]))  # fmt: skip
    trainer, best = make_trainer(C.trainer_kwargs(cfg), C.hardware(cfg), tmp_path, loggers=[], budget=C.budget(cfg),
                                 checkpoint=C.checkpoint_settings(cfg), has_val=True)  # fmt: skip
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 2)), batch_size=1)
    trainer.fit(scripted_val(), train_dataloaders=data, val_dataloaders=data)
    assert best.monitor == "val/video_auc"
    assert Path(best.best_model_path).name == "best.ckpt"
    epoch = torch.load(best.best_model_path, weights_only=True)["epoch"]
    assert epoch == 1  # argmax of the validation scores
    assert max(range(3), key=scripted_val.test_scores.__getitem__) != epoch  # a test set would pick epoch 2


def _one_error_line(p) -> str:
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "Traceback" not in out, out[-2000:]
    errors = [line for line in p.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, p.stderr[-2000:]
    return errors[0]


@pytest.mark.slow
def test_user_errors_are_one_line(cli, tiny_base, tmp_path):
    line = _one_error_line(cli("iid.train", ["backbone=nope"], cwd=tmp_path))
    assert "backbone" in line and "resnet34" in line
    line = _one_error_line(cli("iid.train", ["data=ffpp", f"data.root={tmp_path / 'no_such_ffpp'}",
                                             f"paths.stores={tmp_path / 'stores'}", "logger=csv"], cwd=tmp_path))
    assert "no_such_ffpp" in line and "does not exist" in line
    line = _one_error_line(cli("iid.train", [*tiny_base, "data.methods=[NoSuchMethod]", f"run_dir={tmp_path / 'r'}"],
                               cwd=tmp_path))  # fmt: skip
    assert "0 fake" in line
    line = _one_error_line(cli("iid.train", [*tiny_base, "budget.epochs=many", f"run_dir={tmp_path / 'r2'}"],
                               cwd=tmp_path))  # fmt: skip
    assert "budget.epochs" in line
