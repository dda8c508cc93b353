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
    with pytest.raises(UserError, match="unknown key 'foo'"):
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


@pytest.mark.parametrize("overrides, message", [
    (["model.adm.iou_threshold=2"], "model.adm.iou_threshold=2: must be < 1"),
    (["prepare.face_scale=-1"], "prepare.face_scale=-1: must be > 0"),
    (["prepare.workers=abc"], "prepare.workers='abc': expected an integer"),
    (["eval.face_scale=abc"], "eval.face_scale='abc': expected a number"),
    (["trainer.num_workers=-1"], "trainer.num_workers=-1: must be >= 0"),
    (["data.test_sets=[nope]"], "data.test_sets: ['nope'] unknown"),
    (["data.test_sets=[]"], "data.test_sets is empty: name the sets a run is tested on"),
    (["budget.batch_size=0"], "budget.batch_size=0: must be >= 1"),
    (["+trainer.max_epochs=3"], "trainer.max_epochs: set budget.epochs instead"),
    (["image_size=16"], "image_size=16: must be an integer number of pixels in [32, 1024]"),
    (["image_size=abc"], "image_size='abc': must be an integer"),
])  # fmt: skip
def test_bad_values_fail_before_anything_heavy(overrides, message, compose_cfg):
    from iid.engine.config import check_config, plain_config

    with pytest.raises(UserError) as err:
        check_config(plain_config(compose_cfg(overrides)))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_errors_are_one_line_with_exit_2(cli, tmp_path):
    for args in (["foo=1"], ["+foo=1"], ["prepare.workers=abc"], ["data.test_sets=[nope]"], ["backbone=nope"]):
        p = cli("iid.train", args, cwd=tmp_path, timeout=120)
        errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error: ")]
        assert p.returncode == 2 and len(errors) == 1 and "Traceback" not in p.stderr, (args, p.stderr[-1500:])


def test_a_run_folder_stands_for_its_best_checkpoint(tmp_path):
    """ckpt=<the run folder iid.train prints> resolves to its checkpoints/best.ckpt, else last.ckpt, else
    the file a cached run's `checkpoint.path` names; a folder with none is one line."""
    from iid.engine.checkpoints import checkpoint_file

    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    with pytest.raises(UserError, match="a folder without checkpoints/best.ckpt"):
        checkpoint_file(tmp_path / "run")
    original = tmp_path / "original.ckpt"
    original.write_bytes(b"x")
    (ckpts / "checkpoint.path").write_text(f"{original}\n")
    assert checkpoint_file(tmp_path / "run") == original
    (ckpts / "last.ckpt").write_bytes(b"x")
    assert checkpoint_file(tmp_path / "run") == ckpts / "last.ckpt"
    (ckpts / "best.ckpt").write_bytes(b"x")
    assert checkpoint_file(tmp_path / "run") == ckpts / "best.ckpt"
    assert checkpoint_file(ckpts) == ckpts / "best.ckpt"
    assert checkpoint_file(original) == original  # a file is itself
