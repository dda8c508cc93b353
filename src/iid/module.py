"""The LightningModule: any detector family + its criterion + metrics + logging, from the composed config.

It knows families only through the seam of iid.models.families: `(network, criterion)`, a
ModelOutput with `logits` and `features`, a criterion returning `loss` and parts to log.

Batches arrive as uint8 canvases (docs/interfaces.md). `on_after_batch_transfer` runs, on the
batch's device, the train transform (MFS + DA) while the module is in training mode and the
deterministic eval transform otherwise, each with the optional stages of iid.augment.stages around
it (SBI before training's, test-time perturbations after evaluation's), then normalises with the
network's mean/std (and moves to channels_last when asked).

The composed config (a plain dict) is the module's only argument and is stored in every checkpoint
under `iid_config`, so `DetectorModule.from_checkpoint(path)` rebuilds the model without the
training command line and checkpoints load with `torch.load(path, weights_only=True)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from iid.augment.pipeline import build_eval_transform, build_train_transform
from iid.augment.stages import build_stages, run_stages
from iid.engine.checkpoints import CONFIG_KEY, load_checkpoint
from iid.engine.config import eval_protocol, hardware, image_size, plain_config, upgrade_config
from iid.metrics import METRIC_KEYS, FrameScores
from iid.models.families import build_family
from iid.models.output import ModelOutput
from iid.optim import build_optimizer

__all__ = ["CONFIG_KEY", "DetectorModule", "load_checkpoint", "plain_config"]
# How a metric computed from every rank's frames (FrameScores gathers them) is logged: each rank holds
# the same value, and the max over ranks of equal values is that value exactly, whatever the number of
# ranks (a mean could be off by rounding); a no-op outside DDP. Without sync_dist Lightning would warn
# on every rank that an unsynchronised epoch metric is logged.
GATHERED = {"sync_dist": True, "reduce_fx": "max"}


class DetectorModule(pl.LightningModule):
    """Trains and evaluates the family the config's `model` group names (see the module docstring)."""

    def __init__(self, config: Mapping[str, Any], pretrained: bool | str | None = None) -> None:
        super().__init__()
        self.config = upgrade_config(plain_config(config))
        cfg = self.config
        self.model, self.criterion = build_family(cfg["model"], cfg["backbone"], pretrained)
        size = image_size(cfg)
        self.train_tf = build_train_transform(cfg.get("mfs"), cfg.get("da"), out_size=size, seed=int(cfg.get("seed", 0)))
        self.eval_tf = build_eval_transform(out_size=size, face_scale=eval_protocol(cfg).face_scale)
        self.train_stages = build_stages(cfg, "train", seed=int(cfg.get("seed", 0)))  # before train_tf
        self.eval_stages = build_stages(cfg, "eval", seed=int(cfg.get("seed", 0)))  # after eval_tf
        self.register_buffer("mean", torch.tensor(self.model.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.model.std).view(1, 3, 1, 1), persistent=False)
        self.channels_last = hardware(cfg).channels_last
        self.optim_cfg = cfg.get("optim") or {"name": "adam", "lr": 3.6e-4}
        self.val_scores = FrameScores()
        self.test_scores = nn.ModuleDict()
        self.test_sets: list[str] = []
        self.val_results: dict[str, float] = {}
        self.test_results: dict[str, dict[str, float]] = {}
        self.test_predictions: dict[str, dict[str, Tensor]] = {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str | torch.device = "cpu") -> DetectorModule:
        """Rebuild from a checkpoint written by `iid.train` (config + weights); weights_only load."""
        ckpt = load_checkpoint(path, map_location)
        module = cls(ckpt[CONFIG_KEY], pretrained=False)
        module.load_state_dict(ckpt["state_dict"])
        return module

    # -- batches -----------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def on_train_epoch_start(self) -> None:
        # one augmentation stream per (seed, epoch, rank): a run resumed at an epoch boundary draws
        # exactly the augmentations the uninterrupted run would have drawn
        seed = int(self.config.get("seed", 0))
        state = np.random.SeedSequence([seed, self.current_epoch, self.global_rank]).generate_state(1)[0]
        self.train_tf.reseed(int(state))
        for stage in self.train_stages:
            stage.reseed(int(state) + 1)

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        if self.training:
            batch = self.train_tf(run_stages(self.train_stages, batch))
        else:
            batch = run_stages(self.eval_stages, self.eval_tf(batch))
        image = (batch["image"] - self.mean) / self.std  # (B, 3, 224, 224)
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        batch["image"] = image
        return batch

    def forward(self, image: Tensor) -> ModelOutput:
        return self.model(image)

    @staticmethod
    def fake_prob(logits: Tensor) -> Tensor:
        """(B, 2) logits -> (B,) probability of the fake class."""
        return logits.float().softmax(-1)[:, 1]

    # -- training ----------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        out = self(batch["image"])
        parts = self.criterion(out, batch)
        b = batch["label"].shape[0]
        # each rank sees its own batches: under DDP the logged means are over every rank's (sync_dist)
        self.log("train/loss", parts["loss"].detach(), on_step=True, on_epoch=True, prog_bar=True, batch_size=b,
                 sync_dist=True)  # fmt: skip
        for k, v in parts.items():
            if k != "loss":
                self.log(f"train/{k}", v, on_step=False, on_epoch=True, batch_size=b, sync_dist=True)
        if "num_pos" in parts:  # positive anchors per fake image: does matching find the boxes?
            n_fake = batch["label"].sum().clamp(min=1)
            self.log("train/pos_per_fake", parts["num_pos"] / n_fake, on_step=False, on_epoch=True, batch_size=b,
                     sync_dist=True)  # fmt: skip
        for k, v in (batch.get("stats") or {}).items():  # share of global / partial swaps, DA rates
            self.log(f"aug/{k}", float(v), on_step=False, on_epoch=True, batch_size=b, sync_dist=True)
        return parts["loss"]

    def configure_optimizers(self) -> dict[str, Any]:
        return build_optimizer(self.parameters(), self.optim_cfg)

    # -- validation --------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self.val_scores.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        out = self(batch["image"])
        b = batch["label"].shape[0]
        self.log("val/loss", self.criterion(out, batch)["loss"], on_epoch=True, batch_size=b, sync_dist=True)
        self.val_scores.update(batch["frame"], self.fake_prob(out.logits), batch["label"], batch["video"])

    def on_validation_epoch_end(self) -> None:
        res = self.val_scores.compute()  # gathered over ranks, de-duplicated
        self.val_scores.reset()
        if self.trainer.sanity_checking:
            return
        self.val_results = res
        for k in METRIC_KEYS:
            self.log(f"val/{k}", float(res[k]), prog_bar=k == "video_auc", **GATHERED)

    # -- test ----------------------------------------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        dm = self.trainer.datamodule
        self.test_sets = list(getattr(dm, "test_sets", None) or ["test"])
        self.test_scores = nn.ModuleDict({t: FrameScores() for t in self.test_sets}).to(self.device)
        self.test_results, self.test_predictions = {}, {}

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        out = self(batch["image"])
        name = self.test_sets[dataloader_idx]
        self.test_scores[name].update(batch["frame"], self.fake_prob(out.logits), batch["label"], batch["video"])

    def on_test_epoch_end(self) -> None:
        for name in self.test_sets:
            metric = self.test_scores[name]
            self.test_results[name] = metric.compute()
            self.test_predictions[name] = metric.predictions()
            for k in METRIC_KEYS:
                self.log(f"test/{name}/{k}", float(self.test_results[name][k]), add_dataloader_idx=False, **GATHERED)

    # -- checkpoints ---------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = self.config

