"""Run directories, resuming, loggers and result files shared by `iid.train` and `iid.evaluate`.

A run directory holds:
  .hydra/config.yaml     the composed config (Hydra), also inside every checkpoint
  checkpoints/           best.ckpt (chosen on the validation split), last.ckpt (resume point)
  csv/metrics.csv        the CSV log (always), wandb/ (W&B, offline unless logged in)
  results.json/.csv      test metrics per test set; predictions/<set>.csv per-frame probabilities
"""

from __future__ import annotations

import csv
import json
import math
import netrc
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from iid.errors import UserError, exit_on_user_error

CONF_DIR = Path(__file__).resolve().parent / "conf"  # shipped in the package (pip install . works)
# (results key, table header); ACC/LogLoss/EER/AP are video-level here, results.json has both levels
TABLE_COLUMNS = (("video_auc", "video AUC"), ("frame_auc", "frame AUC"), ("video_acc", "ACC"),
                 ("video_logloss", "LogLoss"), ("video_eer", "EER"), ("video_ap", "AP"))


def plain_config(cfg: Any) -> dict[str, Any]:
    """A resolved plain-dict copy of a config (DictConfig or mapping): safe for weights_only loads."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)  # type: ignore[return-value]
    return OmegaConf.to_container(OmegaConf.create(dict(cfg)), resolve=True)  # type: ignore[return-value]


# -- command line ---------------------------------------------------------------------------------
def hydra_entry(config_name: str, job: Callable[[Any], Any]) -> None:
    """Run `job(cfg)` as a Hydra app on conf/<config_name>.yaml: the one shape of every entry point.

    Unknown group options end in one line before Hydra starts; a UserError inside the job too
    (hydra.main would otherwise print a traceback for an escaping exception).
    """
    import logging

    import hydra

    @exit_on_user_error
    def _job(cfg) -> None:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        job(cfg)

    exit_on_user_error(check_group_overrides)(sys.argv[1:])
    hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(_job)()


def check_group_overrides(argv: Sequence[str], conf_dir: Path = CONF_DIR) -> None:
    """`group=option` arguments naming no config file end in one line (Hydra prints a page).

    Handles `+group=`, `++group=` and multirun lists (`backbone=resnet18,resnet34`).
    """
    for arg in argv:
        m = re.fullmatch(r"\+{0,2}([A-Za-z_][\w]*)=(.*)", arg)
        if not m:
            continue
        group, value = m.groups()
        folder = conf_dir / group
        if not folder.is_dir() or value in ("", "null"):
            continue
        options = sorted(p.stem for p in folder.glob("*.yaml"))
        for v in value.split(","):
            v = v.strip().strip("'\"")
            if v and v not in options:
                raise UserError(f"unknown {group} {v!r}: choose one of {', '.join(options)} ({group}=<name>)")


# -- run directory and resume ----------------------------------------------------------------------
def hydra_run_dir(default: str | Path) -> Path:
    """The job's output directory under Hydra (run or multirun), else `default`."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except (ValueError, ImportError):
        return Path(default)


def resume_checkpoint(resume: str | None, run_dir: Path) -> str | None:
    """`resume=PATH` wins (must exist); else the run directory's last.ckpt when present; else None."""
    if resume:
        p = Path(str(resume)).expanduser()
        if not p.is_file():
            raise UserError(f"resume={resume}: no such checkpoint (give a .ckpt file, or omit resume)")
        return str(p)
    last = run_dir / "checkpoints" / "last.ckpt"
    return str(last) if last.is_file() else None


class LastCheckpoint:
    """Lightning callback writing <dirpath>/last.ckpt (the resume point) at every training epoch end
    and, when `every_n_steps` is set, every n optimizer steps; written atomically (tmp + rename), so
    a run killed while saving keeps the previous one.

    Resuming from a mid-epoch checkpoint keeps the step count exact; the rest of that epoch is drawn
    afresh from the epoch's sampler stream (rows are drawn with replacement, so no frame is owed).
    """

    def __new__(cls, *args, **kwargs):  # subclass Callback lazily: keep `import iid.runs` light
        from pytorch_lightning.callbacks import Callback

        if not issubclass(cls, Callback):
            cls = type(cls.__name__, (cls, Callback), {})
        return object.__new__(cls)

    def __init__(self, dirpath: str | Path, every_n_steps: int | None = None) -> None:
        self.path = Path(dirpath) / "last.ckpt"
        self.every_n_steps = every_n_steps
        self._saved_step = -1

    def _save(self, trainer) -> None:
        if trainer.sanity_checking:
            return
        tmp = self.path.with_suffix(".ckpt.tmp")
        trainer.save_checkpoint(tmp)  # collective under DDP; rank 0 writes
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
        self._saved_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = self.every_n_steps
        if n and trainer.global_step % n == 0 and trainer.global_step != self._saved_step:
            self._save(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # always: a checkpoint from the epoch's last batch-end would resume as a mid-epoch one
        self._save(trainer)


# -- loggers -------------------------------------------------------------------------------------------
def wandb_logged_in(env: Mapping[str, str] | None = None, netrc_path: str | None = None) -> bool:
    """True when W&B has credentials: WANDB_API_KEY, or a netrc entry for its API host."""
    env = os.environ if env is None else env
    if env.get("WANDB_API_KEY"):
        return True
    host = re.sub(r"^https?://", "", env.get("WANDB_BASE_URL", "api.wandb.ai")).rstrip("/")
    try:
        return netrc.netrc(netrc_path).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_mode(env: Mapping[str, str] | None = None, netrc_path: str | None = None) -> str:
    """WANDB_MODE if the user set it, else online when logged in and offline otherwise."""
    env = os.environ if env is None else env
    if env.get("WANDB_MODE"):
        return env["WANDB_MODE"]
    return "online" if wandb_logged_in(env, netrc_path) else "offline"


def csv_version(run_dir: Path, resuming: bool) -> str:
    """"" (csv/metrics.csv) for a fresh run; resume_<k> for the k-th resumption, so a resumed run
    never overwrites the log of the steps before the kill."""
    if not resuming:
        return ""
    k = 1
    while (run_dir / "csv" / f"resume_{k}").exists():
        k += 1
    return f"resume_{k}"


def build_loggers(cfg_logger: Mapping[str, Any], run_dir: Path, config: Mapping[str, Any], resuming: bool = False) -> list:
    """CSV logger always; W&B too when logger.wandb (offline unless the user is logged in)."""
    from pytorch_lightning.loggers import CSVLogger

    loggers: list = [CSVLogger(save_dir=str(run_dir), name="csv", version=csv_version(run_dir, resuming))]
    if cfg_logger.get("wandb", False):
        from pytorch_lightning.loggers import WandbLogger

        mode = wandb_mode()
        os.environ["WANDB_MODE"] = mode
        os.environ.setdefault("WANDB_SILENT", "true")
        name = cfg_logger.get("name") or run_dir.name
        # the run dir names the W&B run id, so a resumed run continues the same W&B run
        run_id = re.sub(r"[^\w-]", "-", str(run_dir.resolve()))[-64:]
        loggers.append(WandbLogger(
            project=cfg_logger.get("project", "iid"), entity=cfg_logger.get("entity"), name=name,
            tags=list(cfg_logger.get("tags") or []), save_dir=str(run_dir), offline=mode == "offline",
            id=run_id, resume="allow", config=dict(config),
        ))  # fmt: skip
    return loggers


# -- results --------------------------------------------------------------------------------------------
def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN
    return x


def write_results(
    out_dir: Path,
    results: Mapping[str, Mapping[str, float]],
    train_set: str | None,
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """results.json (meta + per test set metrics) and results.csv (one row per test set)."""
    from iid.metrics import METRIC_KEYS
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, res in results.items():
        kind = "in-dataset" if name == train_set else "cross-dataset"
        rows.append({"test_set": name, "kind": kind, **{k: _clean(v) for k, v in res.items()}})
    doc = {**meta, "test": {r["test_set"]: r for r in rows}}
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    fields = ["test_set", "kind", "videos", "frames", *METRIC_KEYS]
    with open(out_dir / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    return doc


def write_predictions(out_dir: Path, name: str, preds: Mapping[str, Any], videos: Sequence[str]) -> Path:
    """predictions/<set>.csv: video key, frame row, label, fake probability per scored frame."""
    d = out_dir / "predictions"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "row", "label", "prob"])
        for row, prob, label, vid in zip(preds["row"].tolist(), preds["prob"].tolist(), preds["label"].tolist(),
                                         preds["video"].tolist()):  # fmt: skip
            w.writerow([videos[vid] if vid < len(videos) else vid, row, label, f"{prob:.8g}"])
    return path


def print_table(doc: Mapping[str, Any], title: str) -> None:
    """The results as a rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, caption="ACC (at 0.5), LogLoss, EER, AP: video level; frame level in results.json")
    for col in ("test set", "kind", "videos", "frames", *(h for _, h in TABLE_COLUMNS)):
        t.add_column(col, justify="left" if col in ("test set", "kind") else "right")
    for name, r in doc["test"].items():
        vals = [f"{r[c]:.4f}" if isinstance(r.get(c), float) else "n/a" for c, _ in TABLE_COLUMNS]
        t.add_row(name, r["kind"], str(r.get("videos", "")), str(r.get("frames", "")), *vals)
    Console(file=sys.stdout, width=max(120, Console().width)).print(t)
