"""What every analysis shares: checkpoints, the frames it reads, and the model's outputs on them.

Frames are read from the frame stores directly and go through the module's own evaluation path
(`DetectorModule.on_after_batch_transfer` in eval mode: the eval transform at the checkpoint's face
scale, any test-time stages, the network's mean/std), so an analysis sees exactly what evaluation
sees. Identities come from the store: a real row's identity is its video's person; a fake carries
`(target, source)` in its record, and each analysis says which one it uses (`fakes=`):

  exclude  fakes are left out: only frames whose identity is unambiguous
  target   the person whose video was manipulated (background, pose, outline; for reenactment
           methods such as Face2Face and NeuralTextures also the face)
  source   the person whose face was swapped in (a swap's inner face)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iid.errors import UserError

log = logging.getLogger("iid.analyze")
FAKES = ("exclude", "target", "source")


# -- checkpoints ------------------------------------------------------------------------------------
@dataclass
class Model:
    """One loaded checkpoint: a label for figures, the module (eval mode) and the config it was trained with."""

    name: str
    path: Path
    module: Any  # iid.module.DetectorModule
    config: dict[str, Any]

    @property
    def family(self) -> str:
        return str(self.config["model"]["family"])

    @property
    def train_set(self) -> str:
        return str(self.config["data"]["name"])


def untrained_copy(ckpt: str | Path, out: str | Path, seed: int = 0) -> Path:
    """A control: the checkpoint's model rebuilt from its config with fresh random weights (seeded),
    written in iid.train's format to `out`. The network before training (ImageNet backbone) is
    `iid.analysis.control.control_checkpoint(..., weights="initial")`."""
    from iid.analysis.control import control_checkpoint

    return control_checkpoint(ckpt, out, weights="random", seed=seed)


def checkpoint_path(p: str | Path) -> Path:
    """A checkpoint file, or a run directory (its checkpoints/best.ckpt): as every entry point reads ckpt=."""
    from iid.engine.checkpoints import checkpoint_file

    return checkpoint_file(p)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={name}: no CUDA device here; use device=cpu or device=auto")
    return torch.device(name)


def load_models(ckpts: Sequence[str], names: Sequence[str] | None, device: torch.device) -> list[Model]:
    """The checkpoints, rebuilt from the config stored in each (weights_only load), in eval mode."""
    from iid.engine.checkpoints import CONFIG_KEY, load_checkpoint
    from iid.module import DetectorModule

    if names is not None and len(names) != len(ckpts):
        raise UserError(f"names: {len(names)} given for {len(ckpts)} checkpoints; give one per ckpt or none")
    models = []
    for i, c in enumerate(ckpts):
        path = checkpoint_path(c)
        ckpt = load_checkpoint(path)
        module = DetectorModule(ckpt[CONFIG_KEY], pretrained=False)
        module.load_state_dict(ckpt["state_dict"])
        module.to(device).eval()
        module.requires_grad_(False)
        cfg = module.config
        models.append(Model(names[i] if names else str(cfg["model"]["family"]), path, module, cfg))
    labels = [m.name for m in models]
    for m in models:  # two checkpoints of one family: tell them apart by their run directory
        if labels.count(m.name) > 1 and not names:
            m.name = f"{m.name} ({m.path.parent.parent.name})"
    return models


# -- frames -------------------------------------------------------------------------------------------
@dataclass
class Frames:
    """Rows of one data set (one or more of its splits) with their labels, identities and videos.

    `parts` lists (store, rows) per split, rows ascending; every per-row array follows that order."""

    name: str  # data set, e.g. ffpp
    in_dataset: bool  # the data set the checkpoints were trained on
    parts: list[tuple[Any, np.ndarray]] = field(default_factory=list)
    label: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # 0 real, 1 fake
    identity: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # person, per `fakes`
    target: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    video: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # record key dataset/method/id
    method: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    frame: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # frame index in its video
    split: np.ndarray = field(default_factory=lambda: np.zeros(0, object))

    def __len__(self) -> int:
        return len(self.label)

    @property
    def kind(self) -> str:
        return "in-dataset" if self.in_dataset else "cross-dataset"

    def subset(self, keep: np.ndarray) -> Frames:
        """The rows where `keep` (bool, per row) is True, order kept."""
        keep = np.asarray(keep, bool)
        out = Frames(self.name, self.in_dataset)
        start = 0
        for store, rows in self.parts:
            k = keep[start:start + len(rows)]
            if k.any():
                out.parts.append((store, rows[k]))
            start += len(rows)
        for f in ("label", "identity", "target", "video", "method", "frame", "split"):
            setattr(out, f, getattr(self, f)[keep])
        return out


def identities_of(store: Any, rows: np.ndarray, fakes: str) -> np.ndarray:
    """Per row: its identity under the `fakes` rule (module docstring); '' for excluded fakes."""
    target = np.array(store.identities, dtype=object)[store.identity[rows]]
    if fakes == "target":
        return target
    label = store.label[rows]
    if fakes == "exclude":
        return np.where(label == 0, target, "")
    src = np.array([r.identities[-1] if r.identities else r.identity for r in store.videos], dtype=object)
    return np.where(label == 0, target, src[store.video[rows]])


def select_frames(
    stores: Sequence[Any],
    name: str,
    in_dataset: bool,
    *,
    frames_per_video: int | None,
    fakes: str = "target",
    max_videos: int | None = None,
    balance: bool = False,
    seed: int = 0,
) -> Frames:
    """Frames of the given stores (the splits of one data set): `frames_per_video` at equal intervals
    (None: all stored), identities per `fakes`, at most `max_videos` videos per store (seeded choice;
    with `balance`, half real and half fake as far as each has videos)."""
    from iid.data.sampling import equal_interval_rows

    if fakes not in FAKES:
        raise UserError(f"analysis.fakes={fakes!r}: choose one of {', '.join(FAKES)}")
    out = Frames(name, in_dataset)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("label", "identity", "target", "video", "method", "frame", "split")}
    rng = np.random.default_rng(seed)
    for store in stores:
        rows = np.arange(len(store))
        if fakes == "exclude":
            rows = rows[store.label[rows] == 0]
        videos = np.unique(store.video[rows])
        if max_videos is not None and len(videos) > max_videos:
            videos = _choose_videos(store, videos, max_videos, balance, rng)
        rows = rows[np.isin(store.video[rows], videos)]
        rows = equal_interval_rows(rows, store.video[rows], store.frame[rows], frames_per_video)
        if not len(rows):
            continue
        keys = np.array(store.keys, dtype=object)
        out.parts.append((store, rows))
        cols["label"].append(store.label[rows].astype(np.int64))
        cols["identity"].append(identities_of(store, rows, fakes))
        cols["target"].append(np.array(store.identities, dtype=object)[store.identity[rows]])
        cols["video"].append(keys[store.video[rows]])
        cols["method"].append(np.array([store.videos[v].method for v in store.video[rows]], dtype=object))
        cols["frame"].append(store.frame[rows].astype(np.int64))
        cols["split"].append(np.full(len(rows), store.split, dtype=object))
    for k, v in cols.items():
        if v:
            setattr(out, k, np.concatenate(v))
    return out


def _choose_videos(store: Any, videos: np.ndarray, n: int, balance: bool, rng: np.random.Generator) -> np.ndarray:
    if not balance:
        return np.sort(rng.choice(videos, size=n, replace=False))
    labels = np.array([store.videos[v].label for v in videos])
    real, fake = videos[labels == 0], videos[labels == 1]
    n_real = min(len(real), max(n // 2, n - len(fake)))
    n_fake = min(len(fake), n - n_real)
    pick = [rng.choice(real, size=n_real, replace=False), rng.choice(fake, size=n_fake, replace=False)]
    return np.sort(np.concatenate(pick))


# -- data sets -----------------------------------------------------------------------------------------
@dataclass
class DataContext:
    """The composed data group (the checkpoint's, or the command line's `data=`) and where stores live."""

    config: dict[str, Any]  # the full config the analysis reads data from (checkpoint's + overrides)
    train_set: str  # the data set the (first) checkpoint was trained on

    @property
    def data(self):
        from iid.engine.config import data_settings

        return data_settings(self.config)

    def default_sets(self) -> list[str]:
        d = self.data
        return list(dict.fromkeys([d.name, *d.test_sets]))

    def stores(self, name: str, splits: Sequence[str]) -> list[Any]:
        """Open the stores of data set `name` for the splits it has (a cross set has only test)."""
        from iid.data.store import FrameStore, store_exists

        d = self.data
        found = [FrameStore(d.store_root, name, s, d.prepare_hint) for s in splits if store_exists(d.store_root, name, s)]
        if not found:
            raise UserError(f"no frame store of {name} for split(s) {list(splits)} under {d.store_root}: "
                            f"prepare it (`python -m iid.prepare data=...`) or choose sets= among those prepared")  # fmt: skip
        return found

    def ensure(self, sets: Sequence[str], splits: Sequence[str]) -> None:
        """Build the missing stores the analysis reads (synthetic benchmark first), as evaluate does."""
        from iid.engine.data import ensure_data

        d = self.data
        cfg = dict(self.config)
        cfg["data"] = {**cfg["data"], "test_sets": [s for s in sets if s == d.name or s in (d.cross or {})]}
        ensure_data(cfg, need_train=d.name in sets and any(s != "test" for s in splits))


def data_context(args: Mapping[str, Any], model: Model) -> DataContext:
    """The checkpoint's config with the command line's data, prepare and paths groups applied."""
    from iid.engine.jobs import eval_config

    cfg = eval_config({k: args.get(k) for k in ("data", "prepare", "paths")}, model.config)
    return DataContext(cfg, model.train_set)


# -- running the model -------------------------------------------------------------------------------------
def batches(frames: Frames, batch_size: int) -> Iterator[tuple[slice, dict[str, torch.Tensor]]]:
    """(positions in `frames`, batch dict as the DataModule builds it) over all rows, in order."""
    from iid.data.datamodule import StoreBatches

    start = 0
    for store, rows in frames.parts:
        ds = StoreBatches(store, np.arange(len(store.identities)), shared_memory=False)
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            yield slice(start + i, start + i + len(chunk)), ds[chunk]
        start += len(rows)


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@torch.no_grad()
def eval_inputs(model: Model, batch: Mapping[str, Any]) -> dict[str, Any]:
    """The batch as evaluation feeds it to the network: eval transform + stages + normalisation."""
    module = model.module
    module.eval()
    return module.on_after_batch_transfer(to_device(batch, module.device), 0)


@torch.no_grad()
def run_model(model: Model, frames: Frames, batch_size: int, extras: bool = False) -> dict[str, np.ndarray]:
    """`features` (R, C) float32 (the final linear's input), `logits` (R, 2), `prob` (R,) fake
    probability, and with `extras` the family's extras (the ADM's `loc`, `conf`) for every row."""
    out: dict[str, list[np.ndarray]] = {"features": [], "logits": []}
    for _, batch in batches(frames, batch_size):
        b = eval_inputs(model, batch)
        o = model.module(b["image"])
        out["features"].append(o.features.float().cpu().numpy())
        out["logits"].append(o.logits.float().cpu().numpy())
        if extras:
            for k, v in o.extras.items():
                out.setdefault(k, []).append(v.float().cpu().numpy())
    res = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in out.items()}
    res["prob"] = torch.from_numpy(res["logits"]).softmax(-1)[:, 1].numpy() if len(res["logits"]) else np.zeros(0)
    return res


def open_sets(ctx: DataContext, sets: Sequence[str] | None, splits: Sequence[str], **select: Any) -> list[Frames]:
    """Frames of each data set (default: the data set itself, then its test sets), built if missing."""
    names = list(sets) if sets else ctx.default_sets()
    prepared = [s for s in names if s != "lfw"]
    if prepared:
        ctx.ensure(prepared, splits)
    out = []
    for name in prepared:
        fr = select_frames(ctx.stores(name, splits), name, name == ctx.train_set, **select)
        if len(fr) == 0:
            log.warning("%s: no frames selected (splits %s); left out", name, list(splits))
            continue
        out.append(fr)
    return out
