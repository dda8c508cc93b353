"""The data a run needs: the preparation plan (which frame stores to build, from which raw folders)
and the DataModule over them.

`python -m iid.prepare` runs the whole plan (preparation is resumable: finished videos are
skipped); `iid.train` and `iid.evaluate` run only the part whose stores are missing, so the
synthetic default needs no separate step. The synthetic benchmark is generated first when the data
group asks for it and data.root is its own missing folder; nothing else is written outside the
store root.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from iid.engine.config import Budget, DataSettings, EvalProtocol, data_settings, prepare_settings
from iid.errors import UserError
from iid.settings import plain

log = logging.getLogger("iid.data")
SYNTH_STAMP = "synth_source.json"  # in the synthetic store root: which generated benchmark it holds


def preparation_plan(cfg: Mapping[str, Any], *, need_train: bool = True, only_missing: bool = True) -> list[dict[str, Any]]:
    """The `iid.data.preparation.prepare_dataset` calls the config asks for: the data set (all its
    splits), then each cross-data test set with a root. only_missing: just those whose store is absent
    (a cross set without a root is then skipped: the DataModule warns that it cannot be tested)."""
    from iid.data.store import store_exists

    data, prep = data_settings(cfg), prepare_settings(cfg)
    common = {"store_root": data.store_root, "frames": data.frames, "landmarks": data.landmarks,
              "store_size": prep.store_size, "face_scale": prep.face_scale, "workers": prep.workers,
              "content_hash": prep.hash, "progress": prep.progress}  # fmt: skip
    root = Path(data.store_root)
    calls = []
    missing_own = (need_train and not store_exists(root, data.name, "train")) or (
        data.name in data.test_sets and not store_exists(root, data.name, "test"))
    if not only_missing or missing_own:
        calls.append({"reader": data.reader or data.name, "root": data.root, "json_file": data.json,
                      "methods": list(data.methods) if data.methods is not None else None,
                      "compression": data.compression, **common})  # fmt: skip
    for name, c in (data.cross or {}).items():
        c = plain(c)
        if only_missing and (name not in data.test_sets or store_exists(root, name, "test")):
            continue
        if c.get("root") is None:
            log.info("cross test set %s: no root set, not prepared", name)
            continue
        calls.append({"reader": c.get("reader", name), "root": c["root"], "json_file": c.get("json"),
                      "compression": c.get("compression"), **common})  # fmt: skip
    for call in calls:
        if call["root"] is None or not Path(str(call["root"])).exists():
            hint = data.prepare_hint or f"python -m iid.prepare data={data.name} data.root=<folder>"
            raise UserError(f"data root {call['root']} does not exist and {data.store_root} has no {call['reader']} "
                            f"store: pass data.root=<{call['reader']} folder> or build it with `{hint}`")  # fmt: skip
    return calls


def _synth_marker(out: Path) -> str | None:
    try:
        return (out / ".iid_synth.json").read_text()
    except OSError:
        return None


def _benchmark_read(data: DataSettings) -> Path | None:
    """The synthetic benchmark folder the run reads: the one holding data.root (<benchmark>/FaceForensics++)."""
    return Path(str(data.root)).parent if data.root is not None else None


def ensure_synthetic(cfg: Mapping[str, Any]) -> None:
    """The embedded benchmark, generated on first use, and only there: where data.root is the benchmark's
    own folder (data.synth.out) and no benchmark is in it. A data.root elsewhere (a copy) is read as it is;
    a benchmark of another size, seed or version is never replaced (one line says what to pass); stores
    built from another benchmark than the one read are rebuilt (under data.store_root only)."""
    data = data_settings(cfg)
    if not data.synth:
        return
    from iid.synth import build

    out, store_root = Path(str(data.synth["out"])), Path(data.store_root)
    size, seed = str(data.synth.get("size", "small")), int(data.synth.get("seed", 0))
    if data.root is not None and Path(str(data.root)).resolve() == (out / "FaceForensics++").resolve():
        build.check_args(size, seed)
        marker = build.read_marker(out)
        if marker is None or not marker.get("complete"):  # missing, or a generation killed midway
            build.generate(out, size, seed)
        elif marker.get("version") != build.VERSION:
            raise UserError(f"{out} holds a synthetic benchmark of an older iid: regenerate it with `python -m "
                            f"iid.synth out={out} size={size}`, or pass data.synth.out=<another folder>")  # fmt: skip
        elif (marker.get("scale"), marker.get("seed")) != (size, seed):
            raise UserError(f"{out} holds the synthetic benchmark of size {marker.get('scale')} and seed {marker.get('seed')}, "
                            f"not {size} and {seed}: pass data.synth.size={marker.get('scale')} "
                            f"data.synth.seed={marker.get('seed')} to use it, or data.synth.out=<another folder>")  # fmt: skip
    stamp = store_root / SYNTH_STAMP
    read = _benchmark_read(data)
    if read is not None and stamp.is_file() and stamp.read_text() != _synth_marker(read):
        log.warning("the synthetic benchmark at %s is not the one %s was built from: rebuilding its stores", read,
                    store_root)  # fmt: skip
        shutil.rmtree(store_root)


def run_plan(calls: list[dict[str, Any]], cfg: Mapping[str, Any], report: bool = False) -> list[dict]:
    """Run the preparation calls; stamp synthetic stores with the benchmark they came from."""
    from iid.data.preparation import prepare_dataset

    summaries = []
    for call in calls:
        log.info("preparing %s from %s into %s", call["reader"], call["root"], call["store_root"])
        kwargs = {k: v for k, v in call.items() if k != "json_file" or v is not None}
        s = prepare_dataset(**kwargs)
        summaries.append(s)
        if report:
            print(f"prepared {'+'.join(s['datasets'])} -> {s['store_root']}: {s['videos']} videos "
                  f"({s['processed']} processed, {s['skipped_done']} already done), status {s['status']}, "
                  f"rows {s['rows']}, {s['seconds']} s")  # fmt: skip
    data = data_settings(cfg)
    if data.synth and calls and (read := _benchmark_read(data)) is not None:
        Path(data.store_root, SYNTH_STAMP).write_text(_synth_marker(read) or "")
    return summaries


def ensure_data(cfg: Mapping[str, Any], need_train: bool = True) -> None:
    """Build the frame stores the run needs and lacks (generating the synthetic benchmark first)."""
    ensure_synthetic(cfg)
    run_plan(preparation_plan(cfg, need_train=need_train), cfg)


def build_datamodule(cfg: Mapping[str, Any], budget: Budget, protocol: EvalProtocol, num_workers: int):
    """IIDDataModule from the data group, sized by the budget and the eval protocol."""
    from iid.augment.stages import enabled
    from iid.data.datamodule import IIDDataModule

    data = data_settings(cfg)
    return IIDDataModule(
        name=data.name, store_root=data.store_root, test_sets=list(data.test_sets),
        methods=list(data.methods) if data.methods is not None else None, balance=data.balance,
        real_only=enabled(cfg.get("sbi")),  # SBI makes its fakes from real frames
        batches_per_epoch=budget.batches_per_epoch, batch_size=budget.batch_size,
        eval_batch_size=protocol.batch_size, num_workers=num_workers, test_frames=protocol.test_frames,
        val_frames=protocol.val_frames, seed=int(cfg.get("seed", 0)), prepare_hint=data.prepare_hint,
    )  # fmt: skip
