"""The job behind `python -m iid.analyze <analysis> ckpt=...`: load checkpoints, read data, run, write.

Each analysis module exposes a settings dataclass (the `analysis` config group, validated with
`iid.settings.settings`) and `run(ctx, settings) -> {"summary", "results", "protocol", ...}`; the
runner writes that document to `<out>/<analysis>/<analysis>.json` next to the module's CSV tables and
PNG figures, and sends everything to W&B when `logger.wandb` is on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from iid.analysis import ANALYSES
from iid.analysis.common import DataContext, Frames, Model, data_context, load_models, open_sets, pick_device
from iid.analysis.outputs import Outputs
from iid.engine.threads import intra_op_threads
from iid.errors import UserError
from iid.settings import bounds, settings

log = logging.getLogger("iid.analyze")
TOP_KEYS = ("ckpt", "names", "sets", "out", "device", "batch_size", "seed", "threads")


@dataclass(frozen=True)
class AnalyzeArgs:
    """The top-level keys of conf/analyze.yaml."""

    ckpt: tuple[str, ...] = ()
    names: tuple[str, ...] | None = None
    sets: tuple[str, ...] | None = None
    out: str = "runs/analyses"
    device: str = "cpu"
    batch_size: int = field(default=32, metadata=bounds(1))
    seed: int = 0
    threads: int | None = field(default=None, metadata=bounds(1, type=int, nullable=True))


@dataclass
class Context:
    """What an analysis gets: the models, the data, where to write, and the shared knobs."""

    models: list[Model]
    data: DataContext
    outputs: Outputs
    sets: list[str] | None
    batch_size: int
    seed: int
    args: dict[str, Any]
    messages: list[str] = field(default_factory=list)

    def open_sets(self, splits: Sequence[str], **select: Any) -> list[Frames]:
        return open_sets(self.data, self.sets, splits, seed=self.seed, **select)

    def lfw_frames(self, root: str, landmarks: str, min_images: int) -> Frames:
        from iid.analysis.common import select_frames
        from iid.analysis.lfw import lfw_store

        stores = Path(str((self.args.get("paths") or {}).get("stores") or Path(self.data.data.store_root).parent))
        prep = self.data.config.get("prepare") or {}
        store = lfw_store(root, stores / "lfw", landmarks=landmarks, min_images=min_images,
                          store_size=int(prep.get("store_size", 256)), workers=int(prep.get("workers", 1)))  # fmt: skip
        return select_frames([store], "lfw", False, frames_per_video=None, fakes="exclude")

    def log(self, msg: str) -> None:
        self.messages.append(msg)
        log.info(msg)


def _ckpts(raw: Any) -> tuple[str, ...]:
    if raw in (None, "???", "", []):
        raise UserError("pass the checkpoint(s): ckpt=<run dir or .ckpt>, or ckpt=[<binary run>,<ours run>] to compare")
    return (str(raw),) if isinstance(raw, str | Path) else tuple(str(c) for c in raw)


def analyze(cfg: Any, out_dir: Path | None = None) -> dict[str, Any]:
    """Run the analysis the config's `analysis` group names; returns the document it wrote."""
    import matplotlib

    from iid.engine.config import plain_config

    matplotlib.use("Agg")  # figures go to files; no display needed
    args = plain_config(cfg)
    group = args.get("analysis") or {}
    name = group.get("name")
    if name not in ANALYSES:
        raise UserError(f"analysis={name!r}: choose one of {', '.join(ANALYSES)}")
    mod, cls = ANALYSES[name]
    params = settings(cls, "analysis", group)
    top_raw = {k: args.get(k) for k in TOP_KEYS if k in args}
    top_raw["ckpt"] = _ckpts(top_raw.get("ckpt"))
    for k in ("names", "sets"):
        if isinstance(top_raw.get(k), str):
            top_raw[k] = [top_raw[k]]
    top = settings(AnalyzeArgs, "analyze", top_raw)
    with intra_op_threads(top.threads):
        return _run(args, group, mod, params, top_raw, top, out_dir)


def _run(args: dict, group: dict, mod: Any, params: Any, top_raw: dict, top: AnalyzeArgs, out_dir: Path | None) -> dict:
    """analyze() at the thread count it chose."""
    name = group["name"]
    device = pick_device(top.device)
    torch.manual_seed(top.seed)
    t0 = time.perf_counter()
    models = load_models(top.ckpt, top.names, device)
    data = data_context(args, models[0])
    folder = Path(out_dir) if out_dir else Path(top.out) / name
    outputs = Outputs(folder, name)
    ctx = Context(models, data, outputs, list(top.sets) if top.sets else None, top.batch_size, top.seed, args)
    doc = mod.run(ctx, params)
    doc = {
        "analysis": name,
        "checkpoints": {m.name: {"path": str(m.path), "family": m.family, "backbone": m.config["backbone"]["name"],
                                 "train_set": m.train_set} for m in models},
        "settings": {"analysis": dict(group), **{k: v for k, v in top_raw.items()}},
        **doc,
        "files": {"figures": {k: p.name for k, p in outputs.figures.items()},
                  "tables": {k: p.name for k, p in outputs.tables.items()}},
        "seconds": round(time.perf_counter() - t0, 1),
        "log": ctx.messages,
    }  # fmt: skip
    path = outputs.write_json(doc)
    outputs.to_wandb(args.get("logger") or {"wandb": False}, doc, args)
    print(f"iid.analyze {name}: {path} ({doc['seconds']} s)")
    for line in ctx.messages:
        print("  " + line)
    return doc
