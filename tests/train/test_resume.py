"""Resume from an epoch end gives what the uninterrupted run gives; one training per run directory."""

from __future__ import annotations

import json
import threading

import pytest
import pytorch_lightning as pl
import torch

from iid.errors import UserError


class KilledAtEpochStart(pl.Callback):
    """Stands for a process killed right after epoch `epoch - 1` ended (its last.ckpt written)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("killed")


def _fit(tmp_path, module, callbacks=(), ckpt=None):
    from iid.engine.config import Budget, CheckpointSettings, Hardware
    from iid.engine.trainer import make_trainer

    trainer, best = make_trainer({"num_sanity_val_steps": 0, "enable_model_summary": False},
                                 Hardware(progress_bar="none"), tmp_path, [], budget=Budget(epochs=3),
                                 checkpoint=CheckpointSettings(), callbacks=callbacks)  # fmt: skip
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 2)), batch_size=1)
    trainer.fit(module, train_dataloaders=data, val_dataloaders=data, ckpt_path=ckpt)
    return best


def test_last_checkpoint_holds_the_epochs_validation_score(tmp_path, scripted_val, caplog):
    # killed after epoch 1 (the best): last.ckpt must already know that score, or the resumed run
    # would let epoch 2 (0.7 > epoch 0's 0.6) replace the best checkpoint
    with pytest.raises(RuntimeError, match="killed"), caplog.at_level("INFO", logger="pytorch_lightning"):
        _fit(tmp_path, scripted_val(), [KilledAtEpochStart(2)])
    # the resume checkpoint says what it holds: no "`weights_only` was not set" line at every epoch end
    assert not [r for r in caplog.records if "weights_only" in r.getMessage()]
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    states = [v for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint")]
    assert float(states[0]["best_model_score"]) == pytest.approx(0.9)
    best = _fit(tmp_path, scripted_val(), ckpt=str(tmp_path / "checkpoints" / "last.ckpt"))
    assert float(best.best_model_score) == pytest.approx(0.9)
    assert torch.load(best.best_model_path, weights_only=True)["epoch"] == 1


@pytest.mark.slow
def test_resume_after_each_epoch_gives_the_uninterrupted_results(tiny_base, compose_cfg, tmp_path):
    from iid.train import run

    over = [*tiny_base, "budget.epochs=3"]
    full = run(compose_cfg([*over, f"run_dir={tmp_path / 'full'}"]))
    for k in (1, 2):  # killed after epoch k-1 ended, then started again in the same run directory
        run_dir = tmp_path / f"killed_{k}"
        with pytest.raises(RuntimeError, match="killed"):
            run(compose_cfg([*over, f"run_dir={run_dir}"]), callbacks=[KilledAtEpochStart(k)])
        resumed = run(compose_cfg([*over, f"run_dir={run_dir}"]))
        assert resumed["test"] == full["test"], k
        assert resumed["best_val"]["score"] == full["best_val"]["score"]
        assert resumed["global_step"] == full["global_step"]
    # a finished run is not trained again: its results come back, and its resume point is gone
    again = run(compose_cfg([*over, f"run_dir={tmp_path / 'full'}"]))
    assert again["test"] == full["test"]
    assert not (tmp_path / "full" / "checkpoints" / "last.ckpt").exists()
    assert json.loads((tmp_path / "full" / "results.json").read_text())["test"] == full["test"]


def test_second_training_in_a_locked_run_dir_is_refused(tmp_path):
    from iid.engine.trainer import RunDirLock

    started, release = threading.Event(), threading.Event()

    def first():
        with RunDirLock(tmp_path):
            started.set()
            release.wait(10)

    t = threading.Thread(target=first)
    t.start()
    started.wait(10)
    try:
        with pytest.raises(UserError, match="another training is running"):
            with RunDirLock(tmp_path):
                pass
    finally:
        release.set()
        t.join()
    with RunDirLock(tmp_path):  # free again once the first has ended
        pass
