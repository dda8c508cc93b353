"""The peers' figures: SBI's pseudo-fakes with masks and boxes, ETD's Grad-CAM per local block."""

from __future__ import annotations

import pytest
import torch

PNG = b"\x89PNG\r\n\x1a\n"


def test_sbi_figure_is_written(make_real_batch, tmp_path):
    from iid.augment.sbi_show import render

    out = render(make_real_batch(3, seed=2), tmp_path / "sbi.png", seed=1)
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 10_000


def test_grad_cam_per_block_shapes_scale_and_independence():
    from iid.models.etd_cam import block_grad_cam
    from iid.models.families import build_family

    net, _ = build_family({"family": "etd", "blocks": 3, "fusion": [16]}, {"name": "resnet18"})
    net.train()
    cams, logits = block_grad_cam(net, torch.randn(2, 3, 96, 96))
    assert cams.shape == (2, 3, 96, 96) and logits.shape == (2, 2) and net.training  # mode restored
    assert cams.min() >= 0 and torch.allclose(cams.amax((1, 2, 3)), torch.ones(2))  # one scale per face
    assert not torch.allclose(cams[:, 0], cams[:, 1])  # each block has its own map


def test_grad_cam_figure_from_a_module(compose_cfg, make_real_batch, tmp_path):
    from iid.engine.config import plain_config
    from iid.models.etd_cam import render
    from iid.module import DetectorModule

    m = DetectorModule(plain_config(compose_cfg(["model=etd", "backbone=resnet18", "model.blocks=2",
                                                 "model.fusion=[16]"]))).eval()  # fmt: skip
    batch = make_real_batch(2, seed=3, labels=[1, 0])
    out = render(m, batch, tmp_path / "cam.png")
    assert out.read_bytes()[:8] == PNG


def test_grad_cam_cli_bad_checkpoint_is_a_one_line_error(tmp_path, cli):
    p = cli("iid.models.etd_cam", [f"ckpt={tmp_path / 'missing.ckpt'}", f"store={tmp_path}"], cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.strip().startswith("error:") and len(p.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("module", ["iid.augment.sbi_show", "iid.models.etd_cam"])
def test_figure_entries_have_help(module, cli, tmp_path):
    p = cli(module, ["--help"], cwd=tmp_path)
    assert p.returncode == 0 and f"usage: python -m {module}" in p.stdout
