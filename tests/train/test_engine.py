"""Engine helpers: W&B offline when not logged in, one-line override errors, resume points."""

from __future__ import annotations

import pytest

from iid.engine.checkpoints import resume_checkpoint
from iid.engine.cli import check_group_overrides, check_overrides, user_overrides
from iid.engine.loggers import csv_version, wandb_mode
from iid.errors import UserError


def test_wandb_offline_unless_logged_in(tmp_path):
    none = tmp_path / "no_netrc"
    assert wandb_mode({}, str(none)) == "offline"
    assert wandb_mode({"WANDB_API_KEY": "k"}, str(none)) == "online"
    assert wandb_mode({"WANDB_MODE": "disabled", "WANDB_API_KEY": "k"}, str(none)) == "disabled"  # user's choice wins
    rc = tmp_path / "netrc"
    rc.write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    rc.chmod(0o600)
    assert wandb_mode({}, str(rc)) == "online"


def test_unknown_group_option_is_one_line():
    check_group_overrides(["backbone=resnet18", "adm=off", "trainer.max_epochs=3", "data.root=/x"])
    check_group_overrides(["backbone=resnet18,resnet34"])  # multirun list
    with pytest.raises(UserError, match="unknown backbone 'nope'.*resnet34"):
        check_group_overrides(["backbone=nope"])
    with pytest.raises(UserError, match="unknown adm 'maybe'"):
        check_group_overrides(["backbone=resnet18,resnet34", "adm=on,maybe"])


def test_unknown_keys_and_bad_overrides_are_one_line():
    check_overrides("config", ["-m", "backbone=resnet18,resnet34", "model.adm.beta=0.2", "hydra.verbose=true",
                               "+trainer.limit_val_batches=1", "--cfg", "job"])  # fmt: skip
    with pytest.raises(UserError, match="unknown key 'foo'"):
        check_overrides("config", ["foo=1"])
    with pytest.raises(UserError, match=r"unknown key\(s\) \['foo'\]"):
        check_overrides("config", ["+foo=1"])  # Hydra itself would accept a new top-level key
    with pytest.raises(UserError, match="unknown key 'model.adm.width'"):
        check_overrides("config", ["model=binary", "model.adm.width=3"])  # binary has no ADM
    with pytest.raises(UserError, match="unknown model 'nope'"):
        check_overrides("config", ["-m", "model=caddm,nope"])
    with pytest.raises(UserError, match="cannot parse"):
        check_overrides("config", ["seed=[1,"])
    assert user_overrides(["-m", "--cfg", "job", "a=1", "hydra/launcher=basic", "+b=2"]) == ["a=1", "+b=2"]


def test_resume_points(tmp_path):
    assert resume_checkpoint(None, tmp_path) is None
    with pytest.raises(UserError, match="resume="):
        resume_checkpoint(str(tmp_path / "missing.ckpt"), tmp_path)
    assert csv_version(tmp_path, False) == "" and csv_version(tmp_path, True) == "resume_1"
    (tmp_path / "csv" / "resume_1").mkdir(parents=True)
    assert csv_version(tmp_path, True) == "resume_2"


@pytest.mark.parametrize("content", ["truncated", "empty", "text", "bare_tensor", "foreign_dict"])
def test_unreadable_checkpoints_are_one_line(tmp_path, content):
    import torch

    from iid.engine.checkpoints import load_checkpoint

    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "iid_config": {"model": {"family": "binary"}}}, good)
    bad = tmp_path / "bad.ckpt"
    data = {"truncated": good.read_bytes()[:200], "empty": b"", "text": b"this is a note, not a checkpoint\n"}
    if content in data:
        bad.write_bytes(data[content])
    else:
        torch.save(torch.zeros(3) if content == "bare_tensor" else {"weights": torch.zeros(3)}, bad)
    with pytest.raises(UserError) as err:
        load_checkpoint(bad)
    msg = str(err.value)
    assert str(bad) in msg and "\n" not in msg
    # a corrupt last.ckpt in a run directory: the resume point names the file and what to do
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "last.ckpt").write_bytes(bad.read_bytes())
    with pytest.raises(UserError, match="delete it to start"):
        resume_checkpoint(None, tmp_path / "run")
