"""Fixtures of the analysis tests: tiny synthetic stores, two tiny checkpoints, and every analysis run
once on them (per session) so the end-to-end, CLI and notebook tests share one set of outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

import python_cli

# seconds-long settings of every analysis: the protocol's code paths, few frames
TINY = {
    "probe": ["analysis.frames=3", "analysis.epochs=5"],
    "interaction": ["analysis.grid=2", "analysis.frames=1", "analysis.max_videos=4", "sets=[ffpp,celebdf]"],
    "overlap": ["analysis.frames=2"],
    "tsne": ["analysis.identities=3", "analysis.per_identity=4", "analysis.perplexity=3"],
    "visual": ["analysis.n=2", "analysis.score_threshold=0.0"],
}


def compose(overrides: list[str], config_name: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("iid.conf", version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides)


@pytest.fixture(scope="session")
def tiny_data(synthetic_root: Path, synthetic_stores: Path) -> list[str]:
    """Overrides pointing the data group at the tiny benchmark and the session's prepared stores."""
    root = synthetic_root
    return ["data=synthetic", f"data.synth.out={root}", "data.synth.size=tiny", f"data.root={root}/FaceForensics++",
            f"data.cross.celebdf.root={root}/Celeb-DF-v2", f"data.cross.dfdc.root={root}/DFDC",
            f"paths.stores={synthetic_stores}", "prepare.workers=1", "prepare.progress=false"]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_ckpts(tiny_data: list[str], build_once) -> dict[str, Path]:
    """Checkpoints in iid.train's format (config + weights; random weights, no training): the binary
    family and caddm with a narrow ADM, both on the test network (test_resnet) and the tiny benchmark."""
    import torch

    from iid.engine.checkpoints import CONFIG_KEY
    from iid.engine.config import plain_config
    from iid.module import DetectorModule

    def save(out: Path) -> dict[str, Path]:
        paths = {}
        for name, extra in (("binary", ["model=binary", "mfs=off", "da=off"]), ("caddm", ["model.adm.width=64"])):
            cfg = plain_config(compose(["backbone=test_resnet", "logger=csv", *extra, *tiny_data], "config"))
            torch.manual_seed(0)
            module = DetectorModule(cfg, pretrained=False)
            run = out / name / "checkpoints"
            run.mkdir(parents=True)
            torch.save({CONFIG_KEY: module.config, "state_dict": module.state_dict()}, run / "best.ckpt")
            paths[name] = out / name  # a run directory: analyze finds checkpoints/best.ckpt
        return paths

    return build_once("tiny_ckpts", save)


@pytest.fixture(scope="session")
def analyses(tiny_ckpts: dict[str, Path], tiny_data: list[str], build_once) -> Path:
    """Every analysis run once in-process on [binary, caddm]; returns the output root (<out>/<analysis>/)."""
    from iid.analysis.runner import analyze

    def run_all(out: Path) -> Path:
        ckpts = f"ckpt=[{tiny_ckpts['binary']},{tiny_ckpts['caddm']}]"
        for name, extra in TINY.items():
            analyze(compose([f"analysis={name}", ckpts, f"out={out}", "batch_size=16", *tiny_data, *extra], "analyze"))
        return out

    return build_once("analyses", run_all)


@pytest.fixture(scope="session")
def compose_cfg():
    """compose(overrides, config_name) -> DictConfig (test modules cannot import conftest)."""
    return compose


@pytest.fixture(scope="session")
def cli_env() -> dict[str, str]:
    return python_cli.cli_env()
