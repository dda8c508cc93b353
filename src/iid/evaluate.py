"""`python -m iid.evaluate ckpt=PATH [data=<name>] [test_sets=[...]]`

Rebuilds the model from the config stored in the checkpoint (weights_only load), evaluates it on
the test sets of the checkpoint's data config (or of `data=<name>`) with the checkpoint's eval
settings, and writes results.json / results.csv / predictions to `out` (see iid.runs). With the
defaults it reproduces the numbers the training run reported for that checkpoint.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from iid.errors import UserError
from iid.runs import hydra_entry, hydra_run_dir

log = logging.getLogger("iid.evaluate")


def eval_config(cfg: Any, train_cfg: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's config with the evaluate command's overrides applied."""
    from iid.runs import plain_config

    args = plain_config(cfg)
    config = copy.deepcopy(train_cfg)
    if args.get("data") is not None:
        config["data"] = args["data"]
    if args.get("trainer") is not None:
        config["trainer"] = args["trainer"]
    if args.get("prepare") is not None:
        config["prepare"] = args["prepare"]
    if args.get("test_sets") is not None:
        ts = args["test_sets"]
        config["data"]["test_sets"] = [ts] if isinstance(ts, str) else list(ts)
    for k in ("test_frames", "eval_batch_size"):
        if args.get(k) is not None:
            config["trainer"][k] = args[k]
    if args.get("face_scale") is not None:
        config.setdefault("eval", {})["face_scale"] = float(args["face_scale"])
    return config


def evaluate(cfg: Any, out_dir: Path | None = None) -> dict[str, Any]:
    """Evaluate `cfg.ckpt` (see module docstring); returns the results document."""
    import pytorch_lightning as pl
    from omegaconf import DictConfig, OmegaConf

    from iid.module import CONFIG_KEY, DetectorModule, load_checkpoint
    from iid.train import build_datamodule, ensure_data, finish, make_trainer

    if isinstance(cfg, DictConfig) and OmegaConf.is_missing(cfg, "ckpt") or not cfg.get("ckpt"):
        raise UserError("pass the checkpoint to evaluate: python -m iid.evaluate ckpt=<run dir>/checkpoints/best.ckpt")
    ckpt_path = Path(str(cfg["ckpt"]))
    ckpt = load_checkpoint(ckpt_path)
    train_cfg = ckpt[CONFIG_KEY]
    config = eval_config(cfg, train_cfg)
    out_dir = Path(out_dir or hydra_run_dir(str(cfg.get("out") or "runs/evaluate")))
    out_dir.mkdir(parents=True, exist_ok=True)
    ensure_data(config, need_train=False)
    dm = build_datamodule(config)
    dm.setup("test")
    module = DetectorModule(config, pretrained=False)  # the checkpoint's weights replace the init
    module.load_state_dict(ckpt["state_dict"])
    from pytorch_lightning.loggers import CSVLogger

    trainer, _ = make_trainer(config, out_dir, [CSVLogger(save_dir=str(out_dir), name="csv", version="")], fit=False)
    pl.seed_everything(int(config.get("seed", 0)), verbose=False)
    trainer.test(module, datamodule=dm, verbose=False)
    meta = {"checkpoint": str(ckpt_path), "out": str(out_dir), "train_set": train_cfg["data"]["name"],
            "train_run_dir": train_cfg.get("run_dir"), "global_step": ckpt.get("global_step"),
            "epoch": ckpt.get("epoch")}  # fmt: skip
    return finish(module, dm, out_dir, meta["train_set"], meta, f"iid.evaluate: {ckpt_path} (trained on {meta['train_set']})")


def main() -> None:
    hydra_entry("evaluate", evaluate)


if __name__ == "__main__":
    main()
