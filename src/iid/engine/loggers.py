"""Loggers: a CSV log always (csv/metrics.csv; resumed parts beside it), W&B when `logger.wandb`.

W&B runs online when the user is logged in (WANDB_API_KEY or a netrc entry) and offline otherwise
(sync later with `wandb sync <run_dir>/wandb/...`); WANDB_MODE set by the user wins.
"""

from __future__ import annotations

import netrc
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iid.settings import settings


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


@dataclass(frozen=True)
class LoggerSettings:
    """The `logger` group. A sweep's runs share a W&B `group` (the experiment) and name their row
    in `job_type`."""

    wandb: bool = True
    project: str = "iid"
    entity: str | None = None
    name: str | None = None  # null: the run directory's name
    group: str | None = None
    job_type: str | None = None
    tags: tuple[str, ...] = ()


def build_loggers(cfg_logger: Any, run_dir: Path, config: Mapping[str, Any], resuming: bool = False) -> list:
    """CSV logger always; W&B too when logger.wandb (offline unless the user is logged in)."""
    from pytorch_lightning.loggers import CSVLogger

    s = settings(LoggerSettings, "logger", cfg_logger)
    loggers: list = [CSVLogger(save_dir=str(run_dir), name="csv", version=csv_version(run_dir, resuming))]
    if s.wandb:
        from pytorch_lightning.loggers import WandbLogger

        mode = wandb_mode()
        os.environ["WANDB_MODE"] = mode
        os.environ.setdefault("WANDB_SILENT", "true")
        # the run dir names the W&B run id, so a resumed run continues the same W&B run
        run_id = re.sub(r"[^\w-]", "-", str(run_dir.resolve()))[-64:]
        loggers.append(WandbLogger(
            project=s.project, entity=s.entity, name=s.name or run_dir.name, group=s.group, job_type=s.job_type,
            tags=list(s.tags), save_dir=str(run_dir), offline=mode == "offline", id=run_id, resume="allow",
            config=dict(config),
        ))  # fmt: skip
    return loggers
