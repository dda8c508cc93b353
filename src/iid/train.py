"""`python -m iid.train [backbone=resnet34] [adm=on|off] [mfs=on|off] [da=on|off] [data=synthetic] ...`

Trains the detector, picks the best checkpoint on the validation split, evaluates it on every test
set of `data.test_sets` and writes results.json / results.csv / predictions in the run directory
(see iid.runs). With data=synthetic (the default) the embedded benchmark is generated and its frame
stores prepared on first use. Re-running with the same `run_dir` resumes from its last.ckpt.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from iid.errors import UserError
from iid.runs import (
    LastCheckpoint,
    build_loggers,
    hydra_entry,
    hydra_run_dir,
    plain_config,
    print_table,
    resume_checkpoint,
    write_predictions,
    write_results,
)

log = logging.getLogger("iid.train")

# keys of the trainer group that are the suite's; everything else goes to pl.Trainer
SUITE_TRAINER_KEYS = (
    "batch_size", "batches_per_epoch", "eval_batch_size", "val_frames", "test_frames", "num_workers",
    "channels_last", "progress_bar", "last_every_n_steps",
)  # fmt: skip
SYNTH_STAMP = "synth_source.json"  # in the synthetic store root: which generated benchmark it holds


# -- data ----------------------------------------------------------------------------------------------
def _prepare_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    p, data = cfg.get("prepare") or {}, cfg["data"]
    return {
        "frames": int(data.get("frames") or 32), "landmarks": data.get("landmarks") or "dlib",
        "store_size": int(p.get("store_size", 256)), "face_scale": float(p.get("face_scale", 1.0)),
        "workers": int(p.get("workers", 1)), "progress": bool(p.get("progress", True)),
    }  # fmt: skip


def _synth_marker(out: Path) -> str | None:
    try:
        return (out / ".iid_synth.json").read_text()
    except OSError:
        return None


def ensure_data(cfg: Mapping[str, Any], need_train: bool = True) -> None:
    """Build the frame stores the run needs and lacks: the training data set (all its splits) and
    each cross-data test set with a root. The synthetic benchmark is generated first when needed."""
    from iid.data.store import store_exists
    from iid.prepare import prepare_dataset

    data = cfg["data"]
    store_root, name = Path(str(data["store_root"])), str(data["name"])
    tests = [str(t) for t in data.get("test_sets") or []]
    cross = {k: v for k, v in (data.get("cross") or {}).items() if k in tests and k != name}
    synth = data.get("synth")
    if synth:  # the embedded benchmark: generate on first use; stores follow the benchmark they hold
        from iid.synth import ensure

        out = Path(str(synth["out"]))
        ensure(out, scale=str(synth.get("scale", "small")), seed=int(synth.get("seed", 0)))
        stamp = store_root / SYNTH_STAMP
        marker = _synth_marker(out)
        if stamp.is_file() and stamp.read_text() != marker:
            log.warning("the synthetic benchmark at %s changed: rebuilding its stores in %s", out, store_root)
            shutil.rmtree(store_root)
    kw = _prepare_kwargs(cfg)
    todo = []
    if (need_train and not store_exists(store_root, name, "train")) or (
        name in tests and not store_exists(store_root, name, "test")
    ):
        todo.append((data.get("reader", name), data.get("root"), data.get("methods"), data.get("compression"), data.get("json")))
    for t, c in cross.items():
        if not store_exists(store_root, t, "test") and c.get("root") is not None:
            todo.append((c.get("reader", t), c["root"], None, c.get("compression"), None))
    for reader, root, methods, compression, json_file in todo:
        if root is None or not Path(str(root)).exists():
            hint = data.get("prepare_hint") or f"python -m iid.prepare data={name} data.root=<folder>"
            raise UserError(f"data root {root} does not exist and {store_root} has no {reader} store: "
                            f"pass data.root=<{reader} folder> or build it with `{hint}`")  # fmt: skip
        log.info("preparing %s from %s into %s", reader, root, store_root)
        prepare_dataset(str(reader), str(root), store_root, methods=list(methods) if methods else None,
                        compression=compression, json_file=json_file, **kw)  # fmt: skip
    if synth and todo:
        (store_root / SYNTH_STAMP).write_text(_synth_marker(Path(str(synth["out"]))) or "")


def build_datamodule(cfg: Mapping[str, Any], eval_only: bool = False):
    """IIDDataModule from the data group, sized by the trainer group."""
    from iid.data.datamodule import IIDDataModule

    tr = cfg["trainer"]
    over = {k: tr[k] for k in ("batches_per_epoch", "eval_batch_size", "val_frames", "test_frames")
            if tr.get(k) is not None}  # fmt: skip
    return IIDDataModule.from_config(cfg["data"], batch_size=int(tr["batch_size"]),
                                     num_workers=int(tr.get("num_workers") or 0), seed=int(cfg.get("seed", 0)), **over)


# -- trainer ---------------------------------------------------------------------------------------------
def check_config(cfg: Mapping[str, Any]) -> None:
    """Bad values of the suite's own keys end in one line before anything heavy starts."""
    tr = cfg["trainer"]
    for k in ("batch_size", "max_epochs"):
        v = tr.get(k)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise UserError(f"trainer.{k}={v!r}: must be an integer >= 1")
    for k in ("batches_per_epoch", "eval_batch_size", "val_frames", "test_frames", "last_every_n_steps"):
        v = tr.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise UserError(f"trainer.{k}={v!r}: must be null or an integer >= 1")
    if tr.get("progress_bar", "rich") not in ("rich", "none", None):
        raise UserError(f"trainer.progress_bar={tr.get('progress_bar')!r}: choose rich or none")
    if not isinstance(cfg.get("seed", 0), int):
        raise UserError(f"seed={cfg.get('seed')!r}: must be an integer")


def make_trainer(cfg: Mapping[str, Any], run_dir: Path, loggers: list, callbacks: Sequence = (),
                 has_val: bool = True, fit: bool = True) -> tuple[Any, Any]:
    """pl.Trainer from the trainer group; returns (trainer, best-checkpoint callback or None).
    fit=False (evaluation only): no checkpoint callbacks."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar

    tr = dict(cfg["trainer"])
    kwargs = {k: v for k, v in tr.items() if k not in SUITE_TRAINER_KEYS}
    ck = cfg.get("checkpoint") or {}
    ckpt_dir = run_dir / "checkpoints"
    cbs = list(callbacks)
    best = None
    if fit and has_val:  # the best checkpoint is chosen on the validation split, never on a test set
        best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=ck.get("monitor", "val/video_auc"),
                               mode=ck.get("mode", "max"), save_top_k=1, save_last=False,
                               enable_version_counter=False)  # fmt: skip
        cbs.append(best)
    if fit:
        cbs.append(LastCheckpoint(ckpt_dir, tr.get("last_every_n_steps")))
    if fit and loggers:
        cbs.append(LearningRateMonitor(logging_interval="epoch"))
    progress = tr.get("progress_bar", "rich") == "rich"
    if progress:
        cbs.append(RichProgressBar())
    try:
        trainer = pl.Trainer(default_root_dir=str(run_dir), logger=loggers or False, callbacks=cbs,
                             enable_progress_bar=progress, use_distributed_sampler=False, **kwargs)  # fmt: skip
    except (TypeError, ValueError) as err:  # Lightning's MisconfigurationException is a ValueError
        raise UserError(f"trainer: {str(err).splitlines()[0]}") from None
    return trainer, best


def finish(module, dm, out_dir: Path, train_set: str, meta: dict[str, Any], title: str) -> dict[str, Any]:
    """Write results + predictions (rank 0) and print the table."""
    if module.global_rank != 0:
        return {}
    for name, preds in module.test_predictions.items():
        write_predictions(out_dir, name, preds, dm.videos.get(name, []))
    doc = write_results(out_dir, module.test_results, train_set, meta)
    print_table(doc, title)
    return doc


def run(cfg: Any, callbacks: Sequence = (), run_dir: Path | None = None, test: bool = True) -> dict[str, Any]:
    """Train + test with a composed config (DictConfig or mapping); returns the results document
    (test=False: fit only, returns the run's metadata)."""
    config = plain_config(cfg)
    check_config(config)  # before the heavy imports: a bad value fails in a second

    import pytorch_lightning as pl

    from iid.module import DetectorModule

    run_dir = Path(run_dir or hydra_run_dir(config.get("run_dir", "runs/default")))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")  # also outside Hydra
    ckpt = resume_checkpoint(config.get("resume"), run_dir)
    if ckpt:
        log.info("resuming from %s", ckpt)
    t0 = time.perf_counter()
    ensure_data(config)
    t_data = time.perf_counter() - t0
    pl.seed_everything(int(config.get("seed", 0)), workers=True, verbose=False)
    dm = build_datamodule(config)
    dm.setup("fit")
    module = DetectorModule(config)
    loggers = build_loggers(config.get("logger") or {}, run_dir, config, resuming=ckpt is not None)
    trainer, best = make_trainer(config, run_dir, loggers, callbacks, has_val="val" in dm.rows)
    t1 = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt)
    t_fit = time.perf_counter() - t1
    if trainer.interrupted:
        raise UserError(f"training was interrupted; run again with run_dir={run_dir} to resume")
    chosen = best.best_model_path if best is not None and best.best_model_path else str(run_dir / "checkpoints" / "last.ckpt")
    if not test:
        return {"run_dir": str(run_dir), "checkpoint": chosen, "global_step": trainer.global_step,
                "epochs": trainer.current_epoch, "module": module}  # fmt: skip
    t2 = time.perf_counter()
    trainer.test(module, datamodule=dm, ckpt_path=chosen, verbose=False)
    meta = {
        "run_dir": str(run_dir), "checkpoint": chosen, "train_set": config["data"]["name"],
        "backbone": config["backbone"]["name"] if isinstance(config["backbone"], Mapping) else config["backbone"],
        "adm": module.model.adm is not None, "global_step": trainer.global_step, "epochs": trainer.current_epoch,
        "best_val": {"monitor": best.monitor, "score": _finite(best.best_model_score), "path": chosen}
        if best is not None and best.best_model_score is not None else None,
        "seconds": {"data": round(t_data, 1), "fit": round(t_fit, 1), "test": round(time.perf_counter() - t2, 1)},
    }  # fmt: skip
    return finish(module, dm, run_dir, str(config["data"]["name"]), meta, f"iid.train: {meta['backbone']} adm={'on' if meta['adm'] else 'off'}"
                  f" trained on {meta['train_set']} ({run_dir})")  # fmt: skip


def _finite(x: Any) -> float | None:
    v = float(x)
    return v if v == v and abs(v) != float("inf") else None


def main() -> None:
    hydra_entry("config", run)


if __name__ == "__main__":
    main()
