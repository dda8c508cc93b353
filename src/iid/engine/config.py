"""The composed config as typed settings, one dataclass per group the engine reads itself.

Groups and the one factor each controls (the others are read by their own modules):
  backbone  the timm backbone and its initial weights       (iid.models.families.BackboneSettings)
  model     the detector family and its options             (iid.models.families, one builder each)
  mfs, da   the training-data transforms                    (iid.augment.config)
  data      the data set trained on and its test sets       (DataSettings; read by iid.engine.data)
  budget    epochs, batches per epoch, batch size           (Budget)
  eval      the test protocol: frames per video, face scale (EvalProtocol)
  trainer   the hardware: pl.Trainer arguments + loader workers, memory format, progress bar (Hardware)
  optim     optimiser and lr schedule                       (iid.optim)
  logger    W&B on/off and its project                      (iid.engine.loggers)
  prepare   how missing frame stores are built              (PrepareSettings)
  paths     where data and stores live                      (interpolated into data)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from iid.errors import UserError
from iid.settings import bounds, plain, settings


@dataclass(frozen=True)
class Budget:
    """How much training: `epochs` of `batches_per_epoch` batches of `batch_size` (per device)."""

    epochs: int = field(default=6, metadata=bounds(1))
    batches_per_epoch: int = field(default=50, metadata=bounds(1))
    batch_size: int = field(default=8, metadata=bounds(1))


@dataclass(frozen=True)
class EvalProtocol:
    """How a model is tested: frames per video at equal intervals (null: all stored), the face
    scale of the test crop (1 = the canonical alignment), and the evaluation batch size (null: the
    budget's batch size; it changes speed, never a number)."""

    test_frames: int | None = field(default=32, metadata=bounds(1, type=int, nullable=True))
    val_frames: int | None = field(default=8, metadata=bounds(1, type=int, nullable=True))
    face_scale: float = field(default=1.0, metadata=bounds(0, 4, open_low=True))
    batch_size: int | None = field(default=None, metadata=bounds(1, type=int))


@dataclass(frozen=True)
class Hardware:
    """The trainer group's keys that are not pl.Trainer arguments."""

    num_workers: int = field(default=1, metadata=bounds(0))
    channels_last: bool = False
    progress_bar: str = field(default="rich", metadata=bounds(choices=("rich", "none")))


HARDWARE_KEYS = ("num_workers", "channels_last", "progress_bar")
# pl.Trainer arguments that another group owns
TRAINER_KEYS_OWNED_ELSEWHERE = {"max_epochs": "budget.epochs", "limit_train_batches": "budget.batches_per_epoch",
                                "callbacks": None, "logger": "logger", "default_root_dir": "run_dir"}  # fmt: skip


@dataclass(frozen=True)
class CheckpointSettings:
    """Model selection and resume points."""

    monitor: str = "val/video_auc"  # chosen on the validation split only, never on a test set
    mode: str = field(default="max", metadata=bounds(choices=("max", "min")))
    every_n_steps: int | None = field(default=None, metadata=bounds(1, type=int))  # last.ckpt also every N steps
    keep_last: bool = False  # keep last.ckpt (optimizer state) after the run ends cleanly


@dataclass(frozen=True)
class PrepareSettings:
    """How `prepare` builds a missing frame store (also when a run builds one on first use)."""

    workers: int = field(default=2, metadata=bounds(1))
    store_size: int = field(default=256, metadata=bounds(224))
    face_scale: float = field(default=1.0, metadata=bounds(0, 4, open_low=True))
    hash: bool = False  # redo a video when its content changes (SHA-256), not only its size or mtime
    progress: bool = True


def plain_config(cfg: Any) -> dict[str, Any]:
    """A resolved plain-dict copy of a config (DictConfig or mapping): safe for weights_only loads."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]
    return OmegaConf.to_container(OmegaConf.create(dict(cfg)), resolve=True)  # type: ignore[return-value]


def budget(cfg: Mapping[str, Any]) -> Budget:
    return settings(Budget, "budget", cfg.get("budget"))


def eval_protocol(cfg: Mapping[str, Any]) -> EvalProtocol:
    return settings(EvalProtocol, "eval", cfg.get("eval"))


def hardware(cfg: Mapping[str, Any]) -> Hardware:
    tr = plain(cfg.get("trainer"))
    return settings(Hardware, "trainer", {k: tr[k] for k in HARDWARE_KEYS if k in tr})


def trainer_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The trainer group's pl.Trainer arguments (everything but the hardware keys)."""
    tr = plain(cfg.get("trainer"))
    for k, owner in TRAINER_KEYS_OWNED_ELSEWHERE.items():
        if k in tr:
            raise UserError(f"trainer.{k}: set {owner} instead" if owner else f"trainer.{k}: set by iid itself")
    return {k: v for k, v in tr.items() if k not in HARDWARE_KEYS}


def checkpoint_settings(cfg: Mapping[str, Any]) -> CheckpointSettings:
    return settings(CheckpointSettings, "checkpoint", cfg.get("checkpoint"))


def prepare_settings(cfg: Mapping[str, Any]) -> PrepareSettings:
    return settings(PrepareSettings, "prepare", cfg.get("prepare"))


@dataclass(frozen=True)
class DataSettings:
    """The `data` group (schema and meaning of each key: conf/data/synthetic.yaml)."""

    name: str = "ffpp"
    reader: str | None = None
    root: str | None = None
    json: str | None = None
    store_root: str = "data/stores"
    landmarks: str = "dlib"
    methods: tuple[str, ...] | None = None
    compression: str | None = None
    frames: int = field(default=32, metadata=bounds(1))
    test_sets: tuple[str, ...] = ()
    cross: dict | None = None
    balance: bool = False
    prepare_hint: str | None = None
    synth: dict | None = None


def data_settings(cfg: Mapping[str, Any]) -> DataSettings:
    data = settings(DataSettings, "data", cfg.get("data"))
    known = {data.name, *(data.cross or {})}
    if not data.test_sets:  # found before training, not by the test phase after it
        raise UserError(f"data.test_sets is empty: name the sets a run is tested on, e.g. data.test_sets=[{data.name}]")
    unknown = [t for t in data.test_sets if t not in known]
    if unknown:  # checked before training: a typo must not cost a whole run
        raise UserError(f"data.test_sets: {unknown} unknown; the data group knows {sorted(known)} "
                        "(the data set itself and its data.cross entries)")  # fmt: skip
    return data


def check_config(cfg: Mapping[str, Any]) -> None:
    """Every group the engine, the model and the transforms read, validated before anything heavy
    starts: a bad value or an unknown key fails in a second with one line, not after training."""
    from iid.augment.config import da_config, mfs_config
    from iid.engine.loggers import LoggerSettings
    from iid.models.families import BackboneSettings, check_model
    from iid.optim import check_optim_config

    budget(cfg), eval_protocol(cfg), hardware(cfg), trainer_kwargs(cfg), checkpoint_settings(cfg)
    prepare_settings(cfg), data_settings(cfg)
    settings(LoggerSettings, "logger", cfg.get("logger"))
    settings(BackboneSettings, "backbone", cfg.get("backbone"))
    check_model(cfg.get("model"))
    mfs_config(cfg.get("mfs")), da_config(cfg.get("da"))
    check_optim_config(plain(cfg.get("optim")))
    from iid.augment.stages import build_stages

    build_stages(cfg, "train"), build_stages(cfg, "eval")  # sbi, perturb: their own settings checks
    if cfg.get("experiment") is not None:
        from iid.reporting.tables import ExperimentSpec

        settings(ExperimentSpec, "experiment", cfg["experiment"])
    if not isinstance(cfg.get("seed", 0), int) or isinstance(cfg.get("seed"), bool):
        raise UserError(f"seed={cfg.get('seed')!r}: must be an integer")
    image_size(cfg)
    from iid.engine.runcache import cache_root

    cache_root(cfg)


def image_size(cfg: Mapping[str, Any]) -> int:
    """The model's input side (top-level `image_size`; 224 for configs written before it existed)."""
    v = cfg.get("image_size", 224)
    if not isinstance(v, int) or isinstance(v, bool) or not 32 <= v <= 1024:
        raise UserError(f"image_size={v!r}: must be an integer number of pixels in [32, 1024]")
    return v


def check_prepare_config(cfg: Mapping[str, Any]) -> None:
    """What `python -m iid.prepare` reads: the data and prepare groups."""
    prepare_settings(cfg)
    data = data_settings(cfg)
    if data.root is None:
        raise UserError(f"data.root is not set: pass data.root=<{data.name} folder>")


# -- configs of older checkpoints -------------------------------------------------------------------
def upgrade_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A config stored by an older iid in today's layout: the `adm` group (enabled + loss settings)
    becomes `model` (caddm or binary), and the budget and eval keys leave `trainer` and `data`."""
    cfg = copy.deepcopy(dict(cfg))
    if "model" not in cfg:
        adm = dict(cfg.pop("adm", None) or {"enabled": True})
        if adm.pop("enabled", True):
            cfg["model"] = {"family": "caddm", "adm": adm}
        else:
            cfg["model"] = {"family": "binary"}
    tr, data = dict(cfg.get("trainer") or {}), dict(cfg.get("data") or {})
    if "budget" not in cfg:
        cfg["budget"] = {"epochs": tr.pop("max_epochs", 1), "batch_size": tr.pop("batch_size", 8),
                         "batches_per_epoch": tr.pop("batches_per_epoch", None) or data.get("batches_per_epoch") or 512}
        old_eval = dict(cfg.get("eval") or {})
        cfg["eval"] = {"test_frames": tr.pop("test_frames", None) or data.get("test_frames"),
                       "val_frames": tr.pop("val_frames", None) or data.get("val_frames"),
                       "face_scale": float(old_eval.get("face_scale", 1.0)),
                       "batch_size": tr.pop("eval_batch_size", None) or data.get("eval_batch_size")}  # fmt: skip
        every = tr.pop("last_every_n_steps", None)
        cfg["checkpoint"] = {**dict(cfg.get("checkpoint") or {}), "every_n_steps": every}
        for k in ("batches_per_epoch", "test_frames", "val_frames", "eval_batch_size"):
            data.pop(k, None)
    cfg["trainer"], cfg["data"] = tr, data
    return cfg
