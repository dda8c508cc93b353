"""iid.runs helpers: W&B offline when not logged in, one-line group errors, resume points."""

from __future__ import annotations

import pytest

from iid.errors import UserError
from iid.runs import check_group_overrides, csv_version, resume_checkpoint, wandb_mode


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


def test_resume_points(tmp_path):
    assert resume_checkpoint(None, tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert resume_checkpoint(None, tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")
    with pytest.raises(UserError, match="resume="):
        resume_checkpoint(str(tmp_path / "missing.ckpt"), tmp_path)
    assert csv_version(tmp_path, False) == "" and csv_version(tmp_path, True) == "resume_1"
    (tmp_path / "csv" / "resume_1").mkdir(parents=True)
    assert csv_version(tmp_path, True) == "resume_2"
