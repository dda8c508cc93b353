"""The control checkpoint: a run's network before training (ImageNet backbone from the package, heads
random) or with every weight random; written so that `ckpt=<control>` loads like any run."""

from __future__ import annotations

import pytest
import torch

from iid.analysis.control import control_checkpoint
from iid.engine.checkpoints import CONFIG_KEY
from iid.engine.config import plain_config
from iid.module import DetectorModule

BACKBONE = "model.backbone.model."  # where the timm network's tensors sit in a DetectorModule


@pytest.fixture(scope="module")
def trained(tmp_path_factory, compose_cfg):
    """A stand-in for a trained EfficientNet-Lite0 run (ADM family): its ImageNet start moved by noise,
    as training moves every weight; saved as iid.train saves a run."""
    cfg = plain_config(compose_cfg(["backbone=efficientnet_lite0", "model.adm.width=64", "logger=csv"], "config"))
    assert cfg["backbone"]["pretrained"] == "imagenet"
    torch.manual_seed(1)
    module = DetectorModule(cfg)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.01 * torch.randn_like(p))
    run = tmp_path_factory.mktemp("trained")
    (run / "checkpoints").mkdir()
    torch.save({CONFIG_KEY: module.config, "state_dict": module.state_dict()}, run / "checkpoints" / "best.ckpt")
    return run


def _state(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_initial_control_has_the_packaged_imagenet_backbone_and_random_heads(trained, tmp_path):
    import timm

    from iid.models.packaged_weights import packaged_state_dict

    path = control_checkpoint(trained, tmp_path / "control", weights="initial", seed=3)
    assert path == tmp_path / "control" / "checkpoints" / "best.ckpt"
    control, run = _state(path), _state(trained / "checkpoints" / "best.ckpt")
    # the packaged weights, mapped onto timm's layout independently of the module under test
    full = timm.create_model("tf_efficientnet_lite0.in1k", pretrained=False)
    imagenet = {k: v for k, v in packaged_state_dict("efficientnet_lite0", full).items() if not k.startswith("classifier.")}
    backbone = {k[len(BACKBONE):]: v for k, v in control.items() if k.startswith(BACKBONE)}
    assert set(backbone) == set(imagenet)
    for k, v in imagenet.items():
        assert torch.equal(backbone[k], v), k
        if v.is_floating_point() and v.numel() > 1 and "running" not in k:
            assert not torch.equal(run[BACKBONE + k], v), k  # the run's backbone moved away from ImageNet
    heads = [k for k in control if not k.startswith(BACKBONE) and control[k].is_floating_point()]
    assert any(k.startswith("model.fc.") for k in heads) and any(k.startswith("model.adm.") for k in heads)
    assert all(not torch.equal(control[k], run[k]) for k in heads if control[k].numel() > 1 and "running" not in k)
    # the heads are the seed's: the same seed gives the same control, another seed other heads
    again = _state(control_checkpoint(trained, tmp_path / "again.ckpt", weights="initial", seed=3))
    other = _state(control_checkpoint(trained, tmp_path / "other.ckpt", weights="initial", seed=4))
    assert all(torch.equal(again[k], control[k]) for k in control)
    assert not torch.equal(other["model.fc.weight"], control["model.fc.weight"])
    assert torch.equal(other[BACKBONE + "conv_stem.weight"], control[BACKBONE + "conv_stem.weight"])


def test_random_control_and_the_command_line(trained, tmp_path, cli_env, python_m):
    rnd = _state(control_checkpoint(trained, tmp_path / "random.ckpt", weights="random", seed=3))
    init = _state(control_checkpoint(trained, tmp_path / "initial.ckpt", weights="initial", seed=3))
    assert not torch.equal(rnd[BACKBONE + "conv_stem.weight"], init[BACKBONE + "conv_stem.weight"])
    p = python_m("iid.analysis.control", [str(trained), str(tmp_path / "cli"), "--seed", "3"], cwd=tmp_path,
                 env=cli_env, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    cli = _state(tmp_path / "cli" / "checkpoints" / "best.ckpt")
    assert all(torch.equal(cli[k], init[k]) for k in init)
    bad = python_m("iid.analysis.control", [str(tmp_path / "none"), str(tmp_path / "x")], cwd=tmp_path, env=cli_env,
                   timeout=300)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


def test_a_failed_write_leaves_no_checkpoint_and_says_so_in_one_line(trained, tmp_path, monkeypatch):
    """A full disk mid-save (simulated: torch.save writes part of the file, then fails) leaves neither a
    truncated best.ckpt nor a temporary behind, and is one UserError line."""
    from iid.errors import UserError

    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        with open(f, "r+b") as h:  # what a full disk leaves: the first bytes only
            h.truncate(1000)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1000 vs 3331992")

    monkeypatch.setattr(torch, "save", full_disk)
    out = tmp_path / "control"
    with pytest.raises(UserError, match="cannot write the control checkpoint") as err:
        control_checkpoint(trained, out, weights="random", seed=0)
    assert "\n" not in str(err.value)
    assert list((out / "checkpoints").iterdir()) == []
