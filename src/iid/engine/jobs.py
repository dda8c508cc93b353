"""The two flows the entry points run: train (fit, choose on val, test) and evaluate (a checkpoint).

A training run directory is locked while it trains, resumed from its last.ckpt when started again,
and, once its results.json is written, finished: starting it again returns those results (a sweep
re-run skips its finished runs) instead of training anew. A job whose training config equals a
finished run's elsewhere (another sweep, another experiment's row) reuses that run through the run
cache (iid.engine.runcache; `cache=false` turns it off).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from iid.engine import config as C
from iid.engine import runcache
from iid.engine.checkpoints import (
    CONFIG_KEY,
    SYNTHETIC_CAUTION,
    checkpoint_file,
    load_checkpoint,
    resume_checkpoint,
    trained_on_synthetic,
)
from iid.engine.data import build_datamodule, ensure_data
from iid.engine.results import print_table, write_predictions, write_results
from iid.errors import UserError

log = logging.getLogger("iid.train")


def hydra_run_dir(default: str | Path) -> Path:
    """The job's output directory under Hydra (run or multirun), else `default`."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except (ValueError, ImportError):
        return Path(default)


def _finished(run_dir: Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The results of a finished run with this config, if run_dir holds one."""
    def comparable(c: Mapping[str, Any]) -> dict[str, Any]:  # where the run lives is not what it is
        return {k: v for k, v in c.items() if k not in ("run_dir", "resume", "cache")}

    try:
        doc = json.loads((run_dir / "results.json").read_text())
        same = comparable(json.loads((run_dir / "config.json").read_text())) == comparable(json.loads(json.dumps(config)))
    except (OSError, ValueError):
        return None
    if not same:
        raise UserError(f"{run_dir} holds a finished run with another config: pass another run_dir=")
    return doc


def _finish(module, dm, out_dir: Path, train_set: str, meta: dict[str, Any], title: str, trainer=None) -> dict[str, Any]:
    """Write results + predictions + the ROC figure (rank 0) and print the table."""
    from iid.engine.media import log_images, roc_figure

    if module.global_rank != 0:
        return {}
    for name, preds in module.test_predictions.items():
        write_predictions(out_dir, name, preds, dm.videos.get(name, []))
    if module.test_predictions:
        log_images(trainer, "test/roc", roc_figure(module.test_predictions, out_dir / "roc.png"))
    doc = write_results(out_dir, module.test_results, train_set, meta)
    print_table(doc, title)
    return doc


def _finite(x: Any) -> float | None:
    v = float(x)
    return v if math.isfinite(v) else None


def train(cfg: Any, callbacks: Sequence = (), run_dir: Path | None = None, test: bool = True) -> dict[str, Any]:
    """Train + test with a composed config (DictConfig or mapping); returns the results document
    (test=False: fit only, returns the run's metadata and module)."""
    config = C.plain_config(cfg)
    C.check_config(config)  # before the heavy imports: a bad value fails in a second
    data = C.data_settings(config)
    run_dir = Path(run_dir or hydra_run_dir(config.get("run_dir", "runs/default")))
    run_dir.mkdir(parents=True, exist_ok=True)
    if test and (done := _finished(run_dir, config)) is not None:
        log.info("%s has finished already: its results.json is returned", run_dir)
        runcache.register(config, run_dir, done)  # a run from before the cache joins it
        return done
    from iid.engine.trainer import RunDirLock

    t0 = time.perf_counter()
    with RunDirLock(run_dir):
        if test and (hit := runcache.lookup(config, run_dir)) is not None:
            return runcache.reuse(config, run_dir, *hit)
        doc = _train_locked(config, data.name, callbacks, run_dir, test)
    if test and doc:  # rank 0 of a finished training: its wall time is what a reuse saves
        doc["seconds"]["total"] = round(time.perf_counter() - t0, 1)
        (run_dir / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
        runcache.register(config, run_dir, doc)
    return doc


def _train_locked(config: dict[str, Any], train_set: str, callbacks: Sequence, run_dir: Path, test: bool) -> dict[str, Any]:
    import pytorch_lightning as pl

    from iid.engine.loggers import build_loggers
    from iid.engine.media import FirstBatchGrid
    from iid.engine.trainer import make_trainer
    from iid.models.families import family_name
    from iid.module import DetectorModule

    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")  # also outside Hydra
    ckpt = resume_checkpoint(config.get("resume"), run_dir)
    if ckpt:
        log.info("resuming from %s", ckpt)
    budget, protocol, hw = C.budget(config), C.eval_protocol(config), C.hardware(config)
    t0 = time.perf_counter()
    ensure_data(config)
    t_data = time.perf_counter() - t0
    pl.seed_everything(int(config.get("seed", 0)), workers=True, verbose=False)
    dm = build_datamodule(config, budget, protocol, hw.num_workers)
    dm.setup("fit")
    module = DetectorModule(config)
    loggers = build_loggers(config.get("logger") or {}, run_dir, config, resuming=ckpt is not None)
    trainer, best = make_trainer(C.trainer_kwargs(config), hw, run_dir, loggers, budget=budget,
                                 checkpoint=C.checkpoint_settings(config), callbacks=[*callbacks, FirstBatchGrid(run_dir)],
                                 has_val="val" in dm.rows)  # fmt: skip
    t1 = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt)
    t_fit = time.perf_counter() - t1
    if trainer.interrupted:
        raise UserError(f"training was interrupted; run again with run_dir={run_dir} to resume")
    last = run_dir / "checkpoints" / "last.ckpt"
    chosen = best.best_model_path if best is not None and best.best_model_path else str(last)
    if not test:
        return {"run_dir": str(run_dir), "checkpoint": chosen, "global_step": trainer.global_step,
                "epochs": trainer.current_epoch, "module": module}  # fmt: skip
    t2 = time.perf_counter()
    trainer.test(module, datamodule=dm, ckpt_path=chosen, verbose=False)
    family = family_name(config["model"])
    meta = {
        "run_dir": str(run_dir), "checkpoint": chosen, "train_set": train_set, "model": family,
        "backbone": config["backbone"]["name"], "seed": int(config.get("seed", 0)),
        "global_step": trainer.global_step, "epochs": trainer.current_epoch,
        "best_val": {"monitor": best.monitor, "score": _finite(best.best_model_score), "path": chosen}
        if best is not None and best.best_model_score is not None else None,
        "seconds": {"data": round(t_data, 1), "fit": round(t_fit, 1), "test": round(time.perf_counter() - t2, 1)},
    }  # fmt: skip
    if config.get("experiment"):
        meta["experiment"] = {"name": config["experiment"].get("name"), "row": config["experiment"].get("row")}
    doc = _finish(module, dm, run_dir, train_set, meta,
                  f"iid.train: {meta['backbone']} {family} trained on {train_set} ({run_dir})", trainer)
    if module.global_rank == 0 and chosen != str(last) and not C.checkpoint_settings(config).keep_last:
        last.unlink(missing_ok=True)  # the resume point of a finished run: ~2x the weights, not needed now
    return doc


# -- evaluation -----------------------------------------------------------------------------------------
def eval_config(args: Mapping[str, Any], train_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint's config with the evaluate command's overrides applied: `data`, `trainer`,
    `prepare`, `perturb` replace the checkpoint's groups when given; `eval` keys that are set replace
    its own; `test_sets` replaces data.test_sets."""
    config = copy.deepcopy(dict(train_cfg))
    for group in ("data", "trainer", "prepare", "paths", "perturb"):
        if args.get(group) is not None:
            config[group] = args[group]
    config["eval"] = {**(config.get("eval") or {}), **{k: v for k, v in (args.get("eval") or {}).items() if v is not None}}
    if args.get("test_sets") is not None:
        ts = args["test_sets"]
        config["data"] = {**config["data"], "test_sets": [ts] if isinstance(ts, str) else list(ts)}
    return config


def evaluate(cfg: Any, out_dir: Path | None = None) -> dict[str, Any]:
    """Evaluate the checkpoint `cfg.ckpt` on the test sets of its data config (or of `data=`);
    returns the results document."""
    from iid.engine.trainer import make_trainer

    args = C.plain_config(cfg)
    if not args.get("ckpt") or args["ckpt"] == "???":
        raise UserError("pass the checkpoint to evaluate: python -m iid.evaluate ckpt=<run dir>/checkpoints/best.ckpt")
    ckpt_path = checkpoint_file(args["ckpt"])  # a .ckpt, or a run folder
    ckpt = load_checkpoint(ckpt_path)
    train_cfg = ckpt[CONFIG_KEY]
    config = eval_config(args, train_cfg)
    C.check_config(config)
    caution = None
    if trained_on_synthetic(train_cfg) and not trained_on_synthetic(config):  # a real data set: data=<name>
        caution = f"{SYNTHETIC_CAUTION}; these numbers on {config['data']['name']} measure nothing real"
        log.warning(caution)
    protocol, hw = C.eval_protocol(config), C.hardware(config)
    out_dir = Path(out_dir or hydra_run_dir(str(args.get("out") or "runs/evaluate")))
    out_dir.mkdir(parents=True, exist_ok=True)
    ensure_data(config, need_train=False)
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from iid.module import DetectorModule

    dm = build_datamodule(config, C.budget(config), protocol, hw.num_workers)
    dm.setup("test")
    module = DetectorModule(config, pretrained=False)  # the checkpoint's weights replace the init
    module.load_state_dict(ckpt["state_dict"])
    trainer, _ = make_trainer(C.trainer_kwargs(config), hw, out_dir, [CSVLogger(save_dir=str(out_dir), name="csv", version="")])
    pl.seed_everything(int(config.get("seed", 0)), verbose=False)
    trainer.test(module, datamodule=dm, verbose=False)
    train_set = train_cfg["data"]["name"]
    meta = {"checkpoint": str(ckpt_path), "out": str(out_dir), "train_set": train_set, "model": train_cfg["model"]["family"],
            "train_run_dir": train_cfg.get("run_dir"), "global_step": ckpt.get("global_step"), "epoch": ckpt.get("epoch"),
            "eval": config["eval"], "perturb": config.get("perturb"), **({"warning": caution} if caution else {})}  # fmt: skip
    return _finish(module, dm, out_dir, train_set, meta, f"iid.evaluate: {ckpt_path} (trained on {train_set})", trainer)
