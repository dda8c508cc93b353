"""Fixtures of the training-loop tests: tiny synthetic stores and two tiny trained runs, per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

import python_cli


def tiny_overrides(root: Path, stores: Path) -> list[str]:
    """Hydra overrides of a seconds-long run (debug=smoke) on the tiny synthetic benchmark at `root`."""
    return [
        "debug=smoke", "backbone=test_resnet", "model.adm.width=128",  # narrow ADM: small checkpoints
        f"data.synth.out={root}", "data.synth.size=tiny", f"data.root={root}/FaceForensics++",
        f"data.cross.celebdf.root={root}/Celeb-DF-v2", f"data.cross.dfdc.root={root}/DFDC", f"paths.stores={stores}",
    ]  # fmt: skip


def compose(overrides: list[str], config_name: str = "config"):
    """The config `python -m iid.train <overrides>` would see (without Hydra's runtime)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("iid.conf", version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=overrides)


@pytest.fixture(scope="session")
def tiny_base(synthetic_root: Path, synthetic_stores: Path) -> list[str]:
    """Overrides for tiny runs on the session's prepared synthetic stores (tests/conftest.py)."""
    return tiny_overrides(synthetic_root, synthetic_stores)


@pytest.fixture(scope="session")
def trained_runs(tiny_base: list[str], build_once) -> dict[str, Path]:
    """Run dirs of tiny training runs: the caddm family through the real CLI (`python -m iid.train ...`,
    with the earlier spelling adm=on), the binary one in-process (iid.train.run, same config) to save an
    interpreter start. Both keep last.ckpt (checkpoint.keep_last) for the checkpoint tests."""
    from iid.train import run

    def train(work: Path) -> dict[str, Path]:
        out = {"on": work / "adm_on", "off": work / "adm_off"}
        p = python_cli.run("iid.train", [*tiny_base, "adm=on", "checkpoint.keep_last=true", f"run_dir={out['on']}"],
                    cwd=work)  # fmt: skip
        assert p.returncode == 0, p.stderr[-3000:]
        binary = [o for o in tiny_base if not o.startswith("model.adm.")]  # the binary family has no ADM options
        run(compose([*binary, "model=binary", "checkpoint.keep_last=true", f"run_dir={out['off']}"]))
        return out

    return build_once("trained_runs", train)


@pytest.fixture(scope="session")
def compose_cfg():
    """compose(overrides, config_name="config") -> DictConfig (test modules cannot import conftest)."""
    return compose


@pytest.fixture(scope="session")
def cli():
    """python_cli.run(module, args, cwd, timeout=600) -> CompletedProcess of `python -m <module> <args>`."""
    return python_cli.run


class ScriptedVal(pl.LightningModule):
    """Logs a scripted validation score per epoch; `test_scores` is what a test set would say."""

    val_scores = [0.6, 0.9, 0.7]
    test_scores = [0.9, 0.5, 0.95]

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        pass

    def on_validation_epoch_end(self):
        self.log("val/video_auc", self.val_scores[self.current_epoch])
        self.log("test/ffpp/video_auc", self.test_scores[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.fixture
def scripted_val() -> type[pl.LightningModule]:
    """A LightningModule whose validation scores are scripted (epoch 1 is the best)."""
    return ScriptedVal
