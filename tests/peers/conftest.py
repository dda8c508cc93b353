"""Fixtures of the peer-detector tests: fabricated batches, and tiny synthetic stores for training runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import python_cli


def real_batch(b: int = 8, s: int = 256, seed: int = 0, labels: list[int] | None = None) -> dict:
    """A DataModule batch (docs/interfaces.md) of smooth random canvases with an elliptic face hull."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    face = ((((xx - s / 2) / (0.27 * s)) ** 2 + ((yy - 0.53 * s) / (0.35 * s)) ** 2) < 1).to(torch.uint8)
    base = F.interpolate(torch.rand(b, 3, s // 16, s // 16, generator=g), size=(s, s), mode="bicubic").clamp(0, 1)
    detail = F.interpolate(torch.rand(b, 3, s // 2, s // 2, generator=g), size=(s, s), mode="bilinear")
    image = ((0.7 * base + 0.3 * detail) * 255).round().to(torch.uint8)
    label = torch.tensor(labels if labels is not None else [0] * b, dtype=torch.long)
    t = torch.linspace(0, 2 * torch.pi, 69)[:-1]
    lm = torch.stack([s / 2 + 0.2 * s * torch.cos(t), 0.5 * s + 0.3 * s * torch.sin(t)], 1).expand(b, 68, 2).clone()
    return {
        "image": image.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2),  # channels-last view, as the loader's
        "source": torch.zeros((b, 3, s, s), dtype=torch.uint8),
        "has_source": torch.zeros(b, dtype=torch.bool),
        "face_mask": face.expand(b, 1, s, s).clone(),
        "landmarks": lm,
        "label": label,
        "identity": torch.arange(b),
        "video": torch.arange(b) + 100,
        "frame": torch.arange(b) + 1000,
    }


@pytest.fixture
def make_real_batch():
    return real_batch


def tiny_overrides(root: Path, stores: Path) -> list[str]:
    """Overrides of a seconds-long run (debug=smoke) on the tiny synthetic benchmark at `root`."""
    return [
        "debug=smoke", "backbone=test_resnet", f"data.synth.out={root}", "data.synth.size=tiny",
        f"data.root={root}/FaceForensics++", f"data.cross.celebdf.root={root}/Celeb-DF-v2",
        f"data.cross.dfdc.root={root}/DFDC", f"paths.stores={stores}",
    ]  # fmt: skip


def compose(overrides: list[str], config_name: str = "config"):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("iid.conf", version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides)


@pytest.fixture(scope="session")
def compose_cfg():
    return compose


@pytest.fixture(scope="session")
def tiny_base(synthetic_root: Path, synthetic_stores: Path) -> list[str]:
    """Overrides for tiny runs on the session's prepared synthetic stores (tests/conftest.py)."""
    return tiny_overrides(synthetic_root, synthetic_stores)


@pytest.fixture(scope="session")
def cli():
    """python_cli.run(module, args, cwd, timeout=600): `python -m <module> <args>` from the warm interpreter."""
    return python_cli.run
