"""DetectorModule: device-side transforms and normalisation, losses and logging, the per-epoch paper
schedule, checkpoints that load with weights_only=True."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from iid.engine.checkpoints import CONFIG_KEY
from iid.engine.config import plain_config
from iid.module import DetectorModule
from iid.optim import PiecewiseLR, build_optimizer


def fake_batch(b: int = 2, s: int = 256, seed: int = 0) -> dict[str, torch.Tensor]:
    """A DataModule batch (docs/interfaces.md): a bright square face on the canvas, fakes paired."""
    g = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (b, 3, s, s), dtype=torch.uint8, generator=g)
    mask = torch.zeros(b, 1, s, s, dtype=torch.uint8)
    mask[:, :, 64:192, 64:192] = 1
    pts = torch.rand(b, 68, 2, generator=g) * 128 + 64
    return {
        "image": image, "source": torch.randint(0, 256, (b, 3, s, s), dtype=torch.uint8, generator=g),
        "has_source": torch.ones(b, dtype=torch.bool), "face_mask": mask, "landmarks": pts,
        "label": torch.arange(b) % 2, "identity": torch.zeros(b, dtype=torch.long),
        "video": torch.arange(b), "frame": torch.arange(b),
    }  # fmt: skip


@pytest.fixture(scope="module")
def cfg(compose_cfg):
    return plain_config(compose_cfg(["backbone=resnet18", "model.adm.width=64", "logger=csv"]))


def test_batch_transform_train_vs_eval_and_normalisation(cfg):
    m = DetectorModule(cfg)
    m.train()
    tb = m.on_after_batch_transfer(fake_batch(), 0)
    assert tb["image"].shape == (2, 3, 224, 224) and tb["image"].dtype == torch.float32
    assert tb["boxes"].shape == (2, 4) and tb["has_box"].tolist() == [False, True]
    assert {"mfs_global", "mfs_partial"} <= set(tb["stats"])
    m.eval()
    e1 = m.on_after_batch_transfer(fake_batch(), 0)["image"]
    e2 = m.on_after_batch_transfer(fake_batch(), 0)["image"]
    assert torch.equal(e1, e2)  # evaluation is deterministic
    # normalised with the backbone's mean/std: undoing it gives the [0, 1] crop back
    raw = e1 * m.std + m.mean
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5
    assert m.model.mean == pytest.approx((0.485, 0.456, 0.406), abs=1e-3)


def test_training_step_loss_parts_and_channels_last(cfg):
    c = {**cfg, "trainer": {**cfg["trainer"], "channels_last": True}}
    m = DetectorModule(c)
    m.setup("fit")
    logged = {}
    m.log = lambda name, value, **kw: logged.__setitem__(name, value)  # no Trainer attached
    m.train()
    batch = m.on_after_batch_transfer(fake_batch(), 0)
    assert batch["image"].is_contiguous(memory_format=torch.channels_last)
    loss = m.training_step(batch, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert m.model.adm is not None and any(p.grad is not None for p in m.model.adm.parameters())
    assert {"train/loss", "train/cls", "train/det", "train/num_pos", "aug/mfs_partial", "aug/mfs_global"} <= set(logged)
    off = DetectorModule({**cfg, "model": {"family": "binary"}})
    assert off.model.adm is None
    binary_batch = off.on_after_batch_transfer(fake_batch(), 0)
    logged.clear()
    off.log = lambda name, value, **kw: logged.__setitem__(name, value)
    off.training_step(binary_batch, 0).backward()
    assert {"train/loss", "train/cls"} <= set(logged) and "train/det" not in logged


def test_paper_schedule_changes_lr_at_epochs_10_and_20(cfg):
    lr = PiecewiseLR(3.6e-4, [10, 20], [1e-4, 5e-5])
    assert [lr.value(e) for e in (0, 9, 10, 19, 20, 199)] == [3.6e-4, 3.6e-4, 1e-4, 1e-4, 5e-5, 5e-5]

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)
            self.lrs: list[float] = []

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def on_train_epoch_start(self):
            self.lrs.append(self.optimizers().param_groups[0]["lr"])

        def configure_optimizers(self):
            return build_optimizer(self.parameters(), cfg["optim"])  # what DetectorModule returns

    model = Tiny()
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 2)), batch_size=1)
    pl.Trainer(max_epochs=22, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(model, data)  # 2 steps an epoch: stepped per epoch, not per step
    assert model.lrs[:10] == [pytest.approx(3.6e-4)] * 10
    assert model.lrs[10:20] == [pytest.approx(1e-4)] * 10
    assert model.lrs[20:] == [pytest.approx(5e-5)] * 2


def test_checkpoint_config_is_plain_and_weights_only(cfg, tmp_path):
    m = DetectorModule(cfg)
    ckpt = {"state_dict": m.state_dict()}
    m.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "m.ckpt")
    loaded = torch.load(tmp_path / "m.ckpt", weights_only=True)
    assert type(loaded[CONFIG_KEY]) is dict and loaded[CONFIG_KEY]["model"]["adm"]["width"] == 64
    again = DetectorModule.from_checkpoint(tmp_path / "m.ckpt")
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in m.state_dict().items())


def test_checkpoint_of_the_earlier_config_layout_loads(cfg, tmp_path):
    """Checkpoints written before the model/budget/eval groups held `adm.enabled` and the budget and
    test protocol inside `trainer`; they load as the family and protocol they were trained with."""
    m = DetectorModule(cfg)
    old = {k: v for k, v in cfg.items() if k not in ("model", "budget", "eval", "checkpoint")}
    old["adm"] = {"enabled": True, **cfg["model"]["adm"]}
    old["trainer"] = {**cfg["trainer"], "batch_size": 8, "max_epochs": 6, "batches_per_epoch": 50,
                      "eval_batch_size": 32, "val_frames": 4, "test_frames": 8, "last_every_n_steps": None}
    old["eval"] = {"face_scale": 1.0}
    torch.save({"state_dict": m.state_dict(), CONFIG_KEY: old}, tmp_path / "old.ckpt")
    again = DetectorModule.from_checkpoint(tmp_path / "old.ckpt")
    assert again.config["model"]["family"] == "caddm" and again.config["model"]["adm"]["width"] == 64
    assert again.config["eval"]["test_frames"] == 8 and again.config["budget"]["batch_size"] == 8
    assert "test_frames" not in again.config["trainer"] and "max_epochs" not in again.config["trainer"]
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in m.state_dict().items())
    binary = {**old, "adm": {**old["adm"], "enabled": False}}
    torch.save({"state_dict": DetectorModule({**cfg, "model": {"family": "binary"}}).state_dict(), CONFIG_KEY: binary},
               tmp_path / "old_binary.ckpt")  # fmt: skip
    assert DetectorModule.from_checkpoint(tmp_path / "old_binary.ckpt").model.adm is None
