"""Every option of every config group composes, and every key it sets reaches the object that uses it.

For each group a probe builds the group's consumer the way training does (the DataModule, pl.Trainer,
the family's network and criterion, the transforms, the optimiser, the loggers, the preparation plan)
and reads back, per key, the value that consumer ended up with. A key whose value is not found there
would silently never take effect: the test fails on it.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from iid.engine import config as C
from iid.engine.cli import CONF_DIR


def _train_groups() -> list[str]:
    """The groups of `python -m iid.train`'s defaults list (other entry points have groups of their own:
    perturb for evaluate, analysis for analyze; their tests live with them)."""
    from omegaconf import OmegaConf

    names = []
    for d in OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"))["defaults"]:
        if isinstance(d, dict):
            names += [k.removeprefix("optional ").strip() for k in d]
    return sorted(names)


GROUPS = _train_groups()
PRIMARY = {"config": "train", "evaluate": "evaluate", "prepare": "prepare", "synth": "synth", "show": "show"}


def options(group: str) -> list[str]:
    return sorted(str(p.relative_to(CONF_DIR / group).with_suffix("")) for p in (CONF_DIR / group).rglob("*.yaml"))


def compose(overrides: list[str], name: str = "config") -> dict[str, Any]:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("iid.conf", version_base="1.3"):
        return C.plain_config(hydra_compose(config_name=name, overrides=overrides))


def leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Flat {dotted key: value} of a config node (lists are values)."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for k, v in node.items():
        out.update(leaves(v, f"{prefix}.{k}" if prefix else k))
    return out


def test_every_group_is_known():
    assert set(GROUPS) >= {"adm", "backbone", "budget", "da", "data", "debug", "eval", "experiment", "logger", "mfs",
                           "model", "optim", "paths", "prepare", "row", "sbi", "scale", "trainer"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PRIMARY))
def test_every_primary_config_composes(name):
    overrides = {"evaluate": ["ckpt=x.ckpt"], "show": ["store=x"]}.get(name, [])
    assert compose(overrides, name)


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g) if g not in ("row", "experiment", "perturb")])
def test_every_option_composes_and_validates(group, option):
    cfg = compose([f"{group}={option}"])
    C.check_config(cfg)


# -- probes: what each consumer ended up with ----------------------------------------------------------
class Recorder:
    """Stands in for a class: records the keyword arguments it is built with."""

    calls: list[dict[str, Any]] = []

    def __init__(self, *args, **kwargs):
        Recorder.calls.append(kwargs)


def probe_trainer(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    import pytorch_lightning as pl

    from iid.engine.trainer import make_trainer

    Recorder.calls = []
    monkeypatch.setattr(pl, "Trainer", Recorder)
    hw = C.hardware(cfg)
    make_trainer(C.trainer_kwargs(cfg), hw, tmp_path, [], budget=C.budget(cfg), checkpoint=C.checkpoint_settings(cfg))
    seen = dict(Recorder.calls[-1])
    seen["progress_bar"] = "rich" if seen["enable_progress_bar"] else "none"
    dm = probe_datamodule(cfg)
    seen["num_workers"] = dm.num_workers
    seen["channels_last"] = hw.channels_last  # read by DetectorModule.setup (probed in test_module_reads_...)
    return seen


def probe_datamodule(cfg):
    from iid.engine.data import build_datamodule

    return build_datamodule(cfg, C.budget(cfg), C.eval_protocol(cfg), C.hardware(cfg).num_workers)


def probe_budget(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    dm = probe_datamodule(cfg)
    epochs = probe_trainer(cfg, monkeypatch, tmp_path)["max_epochs"]
    return {"epochs": epochs, "batches_per_epoch": dm.batches_per_epoch, "batch_size": dm.batch_size}


def probe_eval(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    from iid.augment.pipeline import build_eval_transform

    dm = probe_datamodule(cfg)
    protocol = C.eval_protocol(cfg)
    return {"test_frames": dm.test_frames, "val_frames": dm.val_frames,
            "batch_size": None if dm.eval_batch_size == dm.batch_size and protocol.batch_size is None else dm.eval_batch_size,
            "face_scale": build_eval_transform(face_scale=protocol.face_scale).face_scale}  # fmt: skip


def with_roots(cfg, tmp_path) -> dict[str, Any]:
    """The config with its raw-data roots created (unset roots set to a new folder)."""
    data = dict(cfg["data"])
    if data.get("root") is None:
        data["root"] = str(tmp_path / "raw")
    data["cross"] = {k: {**c, "root": c.get("root") or str(tmp_path / "raw" / k)} for k, c in (data.get("cross") or {}).items()}
    for root in [data["root"], *(c.get("root") for c in (data.get("cross") or {}).values())]:
        if root is not None:
            Path(root).mkdir(parents=True, exist_ok=True)
    return {**cfg, "data": data}


def probe_data(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    from iid.engine.config import data_settings
    from iid.engine.data import preparation_plan

    cfg = with_roots(cfg, tmp_path)
    dm = probe_datamodule(cfg)
    data = cfg["data"]
    plan = preparation_plan(cfg, only_missing=False)
    own = plan[0]
    seen = {"name": dm.name, "store_root": dm.store_root, "test_sets": dm.requested_test_sets, "methods": dm.methods,
            "balance": dm.balance, "prepare_hint": dm.prepare_hint, "reader": own["reader"], "root": own["root"],
            "json": own["json_file"], "landmarks": own["landmarks"], "compression": own["compression"],
            "frames": own["frames"]}  # fmt: skip
    calls = iter(plan[1:])
    for name, c in (data.get("cross") or {}).items():
        call = next(calls) if c.get("root") is not None else {"reader": c.get("reader"), "root": None}  # no root: skipped
        seen[f"cross.{name}.reader"], seen[f"cross.{name}.root"] = call["reader"], call["root"]
        for k in ("json", "compression"):
            if k in c:
                seen[f"cross.{name}.{k}"] = call.get("json_file" if k == "json" else k)
    for k, v in (data_settings(cfg).synth or {}).items():
        seen[f"synth.{k}"] = v  # read by ensure_synthetic
    return seen


def probe_model(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    from iid.models.families import build_family

    net, criterion = build_family(cfg["model"], {"name": "resnet18", "pretrained": False})
    seen: dict[str, Any] = {"family": cfg["model"]["family"]}
    if getattr(net, "adm", None) is not None:
        mb = criterion.multibox
        seen.update({"adm.width": net.adm.width, "adm.iou_threshold": mb.threshold, "adm.force_best": mb.force_best,
                     "adm.neg_pos_ratio": mb.neg_pos_ratio, "adm.mining": mb.mining, "adm.alpha": criterion.alpha,
                     "adm.beta": criterion.beta, "adm.variances": list(mb.variances)})  # fmt: skip
    if cfg["model"]["family"] == "etd":
        linears = [m for m in net.fuse if isinstance(m, torch.nn.Linear)]
        drops = {m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)}
        weighting = "learned" if criterion.uncertainty is not None else "fixed"
        seen.update({"blocks": len(net.blocks), "lil": criterion.lil and net.head_minus is not None,
                     "gil": criterion.gil, "temperature": criterion.temperature, "kl_direction": criterion.kl_direction,
                     "detach_target": criterion.detach_target, "weighting": weighting, "alpha": criterion.alpha,
                     "beta": criterion.beta, "fusion": [m.out_features for m in linears[:-1]],
                     "global_dim": None if net.num_features == net.block_width else net.num_features,
                     "dropout": drops.pop() if len(drops) == 1 else drops})  # fmt: skip
    return seen


def probe_backbone(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    import torch

    from iid.models.families import build_family
    from iid.models.packaged_weights import has_packaged_weights, packaged_file

    net, _ = build_family({"family": "binary"}, cfg["backbone"])
    pretrained = cfg["backbone"]["pretrained"]
    if pretrained and has_packaged_weights(net.backbone.name):  # ImageNet from the package: did it arrive?
        stem = torch.load(packaged_file(net.backbone.name), weights_only=True)["_conv_stem.weight"]
        loaded = torch.equal(net.backbone.model.state_dict()["conv_stem.weight"], stem)
        return {"name": net.backbone.name, "pretrained": pretrained if loaded else None}
    return {"name": net.backbone.name, "pretrained": pretrained if not pretrained else None}


def _fields(obj) -> dict[str, Any]:
    return {k: list(map(list, v)) if k == "windows" else list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(obj).items()}


def probe_mfs(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    from iid.augment.pipeline import build_train_transform

    return _fields(build_train_transform(cfg["mfs"], cfg["da"]).mfs)


def probe_da(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    from iid.augment.pipeline import build_train_transform

    return _fields(build_train_transform(cfg["mfs"], cfg["da"]).da)


def probe_sbi(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    from iid.augment.stages import build_stages

    stages = build_stages(cfg, "train")
    on = probe_datamodule(cfg).real_only  # SBI makes the fakes: the DataModule trains on real frames only
    if not stages:
        return {"enabled": on}
    return {**_fields(stages[0].cfg), "enabled": on and stages[0].cfg.enabled}


def probe_optim(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    from iid.optim import build_optimizer

    out = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg["optim"])
    opt, sched = out["optimizer"], out["lr_scheduler"]["scheduler"]
    group = opt.param_groups[0]
    lr_of = sched.lr_lambdas[0]
    seen = {"name": type(opt).__name__.lower(), "lr": group["initial_lr"], "weight_decay": group["weight_decay"],
            "milestones": lr_of.milestones, "lrs": lr_of.lrs}  # fmt: skip
    if "betas" in group:
        seen["betas"] = list(group["betas"])
    if "momentum" in group:
        seen["momentum"] = group["momentum"]
    return seen


def probe_logger(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    import pytorch_lightning.loggers as L

    from iid.engine.loggers import build_loggers

    Recorder.calls = []
    monkeypatch.setattr(L, "WandbLogger", Recorder)
    monkeypatch.setenv("WANDB_MODE", "offline")
    loggers = build_loggers(cfg["logger"], tmp_path, cfg)
    seen = {"wandb": bool(Recorder.calls)}
    if Recorder.calls:
        kw = Recorder.calls[-1]
        seen.update({k: kw[k] for k in ("project", "entity", "group", "job_type")})
        seen["name"] = cfg["logger"]["name"] if kw["name"] == tmp_path.name else kw["name"]
        seen["tags"] = kw["tags"]
    assert type(loggers[0]).__name__ == "CSVLogger"
    return seen


def probe_prepare(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    from iid.engine.data import preparation_plan

    plan = preparation_plan(with_roots(cfg, tmp_path), only_missing=False)
    seen = {k: plan[0][k] for k in ("workers", "store_size", "face_scale", "progress")}
    seen["hash"] = plan[0]["content_hash"]
    return seen


def probe_paths(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    data = cfg["data"]
    return {"data": cfg["paths"]["data"] if data["root"].startswith(cfg["paths"]["data"]) else None,
            "stores": cfg["paths"]["stores"] if data["store_root"].startswith(cfg["paths"]["stores"]) else None}


PROBES = {"trainer": probe_trainer, "budget": probe_budget, "eval": probe_eval, "data": probe_data,
          "model": probe_model, "backbone": probe_backbone, "mfs": probe_mfs, "da": probe_da, "sbi": probe_sbi,
          "optim": probe_optim, "logger": probe_logger, "prepare": probe_prepare, "paths": probe_paths}  # fmt: skip
# groups that only select others (adm=on|off picks the model family; debug, scale, experiment and row set
# values of other groups; experiment's own node is read by the report, checked below)
SELECTORS = {"adm", "debug", "experiment", "row", "scale"}


def probe_perturb(cfg, monkeypatch, tmp_path) -> dict[str, Any]:
    from iid.augment.stages import build_stages
    from iid.engine.jobs import eval_config

    stages = build_stages(eval_config(cfg, compose([])), "eval")  # a checkpoint's config + this command
    return {"name": stages[0].name, "level": stages[0].level} if stages else {"name": "none", "level": 0}


# groups of `python -m iid.evaluate` only (evaluate.yaml), probed through that primary config
EVAL_PROBES = {"perturb": probe_perturb}


def test_every_group_has_a_probe():
    assert set(PROBES) | SELECTORS == set(GROUPS)
    evaluate_groups = {d for d in compose(["ckpt=x.ckpt"], "evaluate")} - {"ckpt", "test_sets", "out"}
    assert set(EVAL_PROBES) <= evaluate_groups


@pytest.mark.parametrize("group, option", [(g, o) for g in sorted(EVAL_PROBES) for o in options(g)])
def test_every_evaluate_key_reaches_its_consumer(group, option, monkeypatch, tmp_path):
    cfg = compose(["ckpt=x.ckpt", f"{group}={option}"], "evaluate")
    assert EVAL_PROBES[group](cfg, monkeypatch, tmp_path) == leaves(cfg[group])


@pytest.mark.parametrize("group, option", [(g, o) for g in sorted(PROBES) for o in options(g)])
def test_every_key_reaches_its_consumer(group, option, monkeypatch, tmp_path):
    cfg = compose([f"{group}={option}", f"paths.data={tmp_path / 'data'}"])
    seen = PROBES[group](cfg, monkeypatch, tmp_path)
    expected = leaves(with_roots(cfg, tmp_path)[group])
    missing = {k: v for k, v in expected.items() if k not in seen or seen[k] != v}
    assert not missing, f"{group}={option}: keys that never reach their consumer: {missing} (consumer saw {seen})"


@pytest.mark.parametrize("option, values", [("smoke", {"budget.epochs": 1, "eval.test_frames": 2,
                                                       "trainer.num_workers": 0, "logger.wandb": False})])  # fmt: skip
def test_selector_groups(option, values):
    cfg = compose([f"debug={option}"])
    flat = leaves(cfg)
    assert {k: flat[k] for k in values} == values
    assert compose(["adm=off"])["model"] == {"family": "binary"}
    assert compose(["adm=on"])["model"]["family"] == "caddm"


def test_module_reads_hardware_and_eval_keys(monkeypatch):
    from iid.module import DetectorModule

    cfg = compose(["backbone=resnet18", "model=binary", "trainer.channels_last=true", "eval.face_scale=0.9"])
    m = DetectorModule(cfg)
    assert m.channels_last is True and m.eval_tf.face_scale == 0.9
    assert m.train_tf.out_size == m.eval_tf.out_size == 224


def test_image_size_reaches_both_transforms_and_both_scales_train_at_224():
    from iid.module import DetectorModule

    m = DetectorModule(compose(["backbone=resnet18", "model=binary", "image_size=96"]))
    assert m.train_tf.out_size == m.eval_tf.out_size == 96
    assert compose(["scale=mini"])["image_size"] == compose(["scale=paper"])["image_size"] == 224


def test_a_key_owned_by_another_group_is_refused():
    from iid.errors import UserError

    cfg = compose(["+trainer.max_epochs=3"])
    with pytest.raises(UserError, match="budget.epochs"):
        C.check_config(cfg)


def test_configs_ship_inside_the_package():
    import iid

    assert CONF_DIR == Path(iid.__file__).parent / "conf" and (CONF_DIR / "config.yaml").is_file()


EXPERIMENTS = options("experiment")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("scale", options("scale"))
def test_every_job_of_every_experiment_composes_and_validates(experiment, scale):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    from iid.engine.cli import _sweep
    from iid.reporting.tables import ExperimentSpec
    from iid.settings import settings

    with initialize_config_module("iid.conf", version_base="1.3"):
        jobs = _sweep(hydra_compose, "config", [f"experiment={experiment}", f"scale={scale}"])
        rows, composed = set(), {}
        for job in jobs:
            # jobs that differ in their seed only compose to one config but its seed (a plain integer
            # key): composed once, the other seeds set on a copy (Hydra's compose is ~0.5 s a job)
            seed = next((int(o.split("=", 1)[1]) for o in job if o.startswith("seed=")), None)
            rest = tuple(o for o in job if not o.startswith("seed="))
            if rest not in composed:
                composed[rest] = C.plain_config(hydra_compose(config_name="config", overrides=job))
            cfg = copy.deepcopy(composed[rest])
            if seed is not None:
                cfg["seed"] = seed
            C.check_config(cfg)
            spec = settings(ExperimentSpec, "experiment", cfg["experiment"])
            rows.add(spec.row)
            if scale == "mini":  # every mini job on an ImageNet-initialised Lite, whatever network a row names
                assert cfg["backbone"]["name"].startswith("efficientnet_lite"), (job, cfg["backbone"])
                assert cfg["backbone"]["pretrained"] in ("imagenet", True), (job, cfg["backbone"])
    # rows beyond the paper's only for the networks an experiment sweeps at mini in place of the paper's
    extra = {r for r in rows - set(spec.rows) if r.split(":")[0] not in (spec.backbones or {}).get(scale, "").split(",")}
    assert spec.name == experiment and not extra, extra
    assert all(m in ("video_auc", "frame_auc") for m in spec.metrics)  # what the report computes
    assert len(jobs) == len(rows) * (3 if scale == "mini" else 1)  # one job per row and seed
    from iid.reporting.tables import expand_compare

    pairs = expand_compare(spec.compare, spec.rows)
    assert bool(pairs) == bool(spec.compare)
    for row, ref in pairs.items():
        assert row in spec.rows and ref in spec.rows
    if spec.paper:  # the paper's numbers name rows and columns of the table
        import csv

        from iid.reporting.tables import PAPER_DIR

        with open(PAPER_DIR / f"{spec.paper}.csv") as f:
            for r in csv.DictReader(f):
                assert r["row"] in spec.rows and r["column"] in spec.columns, r
                assert 0 <= float(r["value"]) <= 1 and r["level"] in ("video", "frame") and r["metric"] in ("auc", "acc")
