"""The LightningModule: detector + loss + metrics + logging, built from the composed config.

Batches arrive as uint8 canvases (docs/interfaces.md). `on_after_batch_transfer` runs, on the
batch's device, the train transform (MFS + DA) while the module is in training mode and the
deterministic eval transform otherwise, then normalises with the backbone's mean/std (and moves to
channels_last when asked).

The composed config (a plain dict) is the module's only argument and is stored in every checkpoint
under `iid_config`, so `DetectorModule.from_checkpoint(path)` rebuilds the model without the
training command line and checkpoints load with `torch.load(path, weights_only=True)`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from iid.augment.pipeline import build_eval_transform, build_train_transform
from iid.errors import UserError
from iid.losses import DetectorLoss
from iid.metrics import METRIC_KEYS, FrameScores
from iid.models.detector import Detector
from iid.optim import build_optimizer
from iid.runs import plain_config

__all__ = ["CONFIG_KEY", "DetectorModule", "build_loss", "build_model", "load_checkpoint", "plain_config"]

CONFIG_KEY = "iid_config"  # checkpoint entry holding the composed config (plain dict)


def _get(node: Mapping[str, Any] | None, key: str, default: Any = None) -> Any:
    return default if node is None or node.get(key) is None else node[key]


def adm_enabled(adm_cfg: Any) -> bool:
    """The adm group holds `enabled`; tolerate a bare boolean (YAML reads on/off as booleans)."""
    if isinstance(adm_cfg, bool):
        return adm_cfg
    if isinstance(adm_cfg, Mapping):
        return bool(adm_cfg.get("enabled", True))
    raise UserError(f"adm: expected the adm config group (adm=on or adm=off), got {adm_cfg!r}")


def build_model(cfg: Mapping[str, Any], pretrained: bool | str | None = None) -> Detector:
    """Detector from the `backbone` and `adm` groups; `pretrained` overrides backbone.pretrained
    (from_checkpoint passes False: the checkpoint's weights replace the initial ones anyway)."""
    bb = cfg["backbone"]
    name = bb if isinstance(bb, str) else _get(bb, "name")
    if name is None:
        raise UserError("backbone: the backbone group must name a model (backbone=resnet34, ...)")
    pre = _get(bb, "pretrained", False) if pretrained is None and isinstance(bb, Mapping) else (pretrained or False)
    kwargs = {}
    adm = cfg["adm"]
    if isinstance(adm, Mapping) and "width" in adm:
        kwargs["adm_width"] = adm["width"]
    return Detector(backbone=str(name), pretrained=pre, adm=adm_enabled(adm), **kwargs)


def build_loss(adm_cfg: Any) -> DetectorLoss:
    """DetectorLoss from the adm group: keys matching DetectorLoss's arguments are passed on."""
    accepted = set(inspect.signature(DetectorLoss.__init__).parameters) - {"self", "anchors"}
    adm = dict(adm_cfg) if isinstance(adm_cfg, Mapping) else {}
    if "iou_threshold" in adm:  # the adm group's name for MultiBoxLoss's matching threshold
        adm["threshold"] = adm.pop("iou_threshold")
    kw = {k: v for k, v in adm.items() if k in accepted}
    if "variances" in kw:
        kw["variances"] = tuple(kw["variances"])
    try:
        return DetectorLoss(**kw)
    except ValueError as err:
        raise UserError(f"adm: {err}") from None


class DetectorModule(pl.LightningModule):
    """Trains and evaluates `Detector` (see the module docstring). `config`: the composed config."""

    def __init__(self, config: Mapping[str, Any], pretrained: bool | str | None = None) -> None:
        super().__init__()
        self.config = plain_config(config)
        cfg = self.config
        self.model = build_model(cfg, pretrained)
        self.loss_fn = build_loss(cfg["adm"])
        self.train_tf = build_train_transform(cfg.get("mfs"), cfg.get("da"), seed=int(cfg.get("seed", 0)))
        self.eval_tf = build_eval_transform(face_scale=float(_get(cfg.get("eval"), "face_scale", 1.0)))
        self.register_buffer("mean", torch.tensor(self.model.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.model.std).view(1, 3, 1, 1), persistent=False)
        self.channels_last = bool(_get(cfg.get("trainer"), "channels_last", False))
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

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        batch = self.train_tf(batch) if self.training else self.eval_tf(batch)
        image = (batch["image"] - self.mean) / self.std  # (B, 3, 224, 224)
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        batch["image"] = image
        return batch

    def forward(self, image: Tensor):
        return self.model(image)

    def _loss(self, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        return self.loss_fn(out, batch["label"], batch.get("boxes"), batch.get("has_box"))

    @staticmethod
    def fake_prob(logits: Tensor) -> Tensor:
        """(B, 2) logits -> (B,) probability of the fake class."""
        return logits.float().softmax(-1)[:, 1]

    # -- training ----------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        out = self(batch["image"])
        parts = self._loss(out, batch)
        b = batch["label"].shape[0]
        self.log("train/loss", parts["loss"].detach(), on_step=True, on_epoch=True, prog_bar=True, batch_size=b)
        for k, v in parts.items():
            if k != "loss":
                self.log(f"train/{k}", v, on_step=False, on_epoch=True, batch_size=b)
        if "num_pos" in parts:  # positive anchors per fake image: does matching find the boxes?
            n_fake = batch["label"].sum().clamp(min=1)
            self.log("train/pos_per_fake", parts["num_pos"] / n_fake, on_step=False, on_epoch=True, batch_size=b)
        for k, v in (batch.get("stats") or {}).items():  # share of global / partial swaps, DA rates
            self.log(f"aug/{k}", float(v), on_step=False, on_epoch=True, batch_size=b)
        return parts["loss"]

    def configure_optimizers(self) -> dict[str, Any]:
        return build_optimizer(self.parameters(), self.optim_cfg)

    # -- validation --------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self.val_scores.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        out = self(batch["image"])
        b = batch["label"].shape[0]
        self.log("val/loss", self._loss(out, batch)["loss"], on_epoch=True, batch_size=b, sync_dist=True)
        self.val_scores.update(batch["frame"], self.fake_prob(out.logits), batch["label"], batch["video"])

    def on_validation_epoch_end(self) -> None:
        res = self.val_scores.compute()  # gathered over ranks, de-duplicated
        self.val_scores.reset()
        if self.trainer.sanity_checking:
            return
        self.val_results = res
        for k in METRIC_KEYS:
            self.log(f"val/{k}", float(res[k]), prog_bar=k == "video_auc")

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
                self.log(f"test/{name}/{k}", float(self.test_results[name][k]), add_dataloader_idx=False)

    # -- checkpoints ---------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = self.config


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """torch.load with weights_only=True; a missing or foreign file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist: pass ckpt=<run dir>/checkpoints/<file>.ckpt")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if CONFIG_KEY not in ckpt or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a checkpoint written by iid.train (no {CONFIG_KEY!r} entry)")
    return ckpt
