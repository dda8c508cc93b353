"""The run cache: a job whose training is the same as a finished run's reuses that run instead of training.

"The same training" is a fingerprint: the SHA-256 of the composed config as canonical JSON, less
what only says where outputs go or what a row is called (`LABEL_KEYS`, `OUTPUT_KEYS`). Everything
that changes what is trained or how it is tested stays in it: seed, data and test sets, the eval
protocol, backbone and its initial weights, model, transforms, optimiser, budget, iid's version.
So Table 3's "Ours (ResNet-34)" row and Table 2's "DA+MFS+ADM" row, which differ only in labels,
share one training, across sweeps and experiments.

A run that finished training registers itself under the cache folder (`cache`, default runs/cache;
`cache=false` turns the cache off): `<cache>/<fingerprint>.json` holds the run's absolute folder,
its checkpoint and the wall time it took. A new job with that fingerprint gets, in its own run
folder, the run's results (results.json with the new job's experiment and row, results.csv,
predictions/, roc.png), its config.json, and `checkpoints/<name>.ckpt` as a symbolic link to the
original checkpoint (or a `checkpoint.path` file naming it where links are not possible); nothing
of the original is copied but those small files. An entry whose run was deleted or changed is
ignored (and removed), never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from iid.errors import UserError

log = logging.getLogger("iid.train")
DEFAULT_ROOT = "runs/cache"
# top-level keys that name or place a run, never change it
LABEL_KEYS = ("experiment", "logger", "run_dir", "resume", "hydra", "cache")
# keys inside groups that only change logging, progress display or speed (documented as such)
OUTPUT_KEYS = {"trainer": ("progress_bar", "log_every_n_steps"), "prepare": ("workers", "progress"),
               "eval": ("batch_size",), "checkpoint": ("every_n_steps",)}  # fmt: skip
REPORT_FILES = ("results.csv", "roc.png", "first_batch.png")


def cache_root(config: Mapping[str, Any]) -> Path | None:
    """The cache folder of a config (`cache: <folder> | true | false`); None when off."""
    value = config.get("cache", DEFAULT_ROOT)
    if value is None or value is False:
        return None
    if value is True:
        return Path(DEFAULT_ROOT)
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"cache={value!r}: give a folder (cache=runs/cache) or cache=false")
    return Path(value).expanduser()


def training_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config less its labels and output-only keys: what the fingerprint is taken of."""
    out = {k: v for k, v in json.loads(json.dumps(config)).items() if k not in LABEL_KEYS}
    for group, keys in OUTPUT_KEYS.items():
        if isinstance(out.get(group), dict):
            out[group] = {k: v for k, v in out[group].items() if k not in keys}
    return out


def fingerprint(config: Mapping[str, Any]) -> str:
    from iid import __version__

    canonical = json.dumps({"iid": __version__, "config": training_config(config)}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=True)  # fmt: skip
    return hashlib.sha256(canonical.encode()).hexdigest()


def _wall_seconds(doc: Mapping[str, Any]) -> float:
    """How long a finished run took: its recorded total, else the sum of its parts (older runs)."""
    secs = doc.get("seconds") or {}
    total = secs.get("total")
    return float(total) if total is not None else float(sum(v for v in secs.values() if isinstance(v, (int, float))))


def register(config: Mapping[str, Any], run_dir: Path, doc: Mapping[str, Any]) -> Path | None:
    """Index a run that finished training (not one that reused another) under the cache folder."""
    root = cache_root(config)
    if root is None or doc.get("reused") or not doc.get("checkpoint"):
        return None
    ckpt = Path(str(doc["checkpoint"]))
    if not ckpt.is_file():
        return None
    key = fingerprint(config)
    entry = {"fingerprint": key, "run_dir": str(Path(run_dir).resolve()), "checkpoint": str(ckpt.resolve()),
             "seconds": round(_wall_seconds(doc), 1), "registered": time.strftime("%Y-%m-%dT%H:%M:%S"),
             "experiment": doc.get("experiment")}  # fmt: skip
    path = root / f"{key}.json"
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entry, indent=2) + "\n")
        os.replace(tmp, path)  # a reader never sees half an entry
    except OSError as err:  # the run itself is fine: only later reuse is lost
        log.warning("run cache: cannot index %s in %s (%s)", run_dir, root, err)
        return None
    return path


def _valid(entry: Mapping[str, Any], key: str) -> tuple[Path, dict[str, Any]] | None:
    """The entry's run folder and results when the run is still there, finished, with this fingerprint."""
    try:
        run = Path(entry["run_dir"])
        doc = json.loads((run / "results.json").read_text())
        same = fingerprint(json.loads((run / "config.json").read_text())) == key
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ckpt = Path(str(entry.get("checkpoint", "")))
    preds = [run / "predictions" / f"{name}.csv" for name in doc.get("test") or {}]
    if not same or doc.get("reused") or not ckpt.is_file() or not all(p.is_file() for p in preds):
        return None
    return run, doc


def lookup(config: Mapping[str, Any], run_dir: Path) -> tuple[dict[str, Any], Path, dict[str, Any]] | None:
    """(entry, its run folder, its results) of a finished run with this config's fingerprint, or None."""
    root = cache_root(config)
    if root is None:
        return None
    key = fingerprint(config)
    path = root / f"{key}.json"
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    found = _valid(entry, key) if isinstance(entry, dict) else None
    if found is None:
        log.info("run cache: %s points to a run that is gone or changed; it is dropped", path)
        path.unlink(missing_ok=True)
        return None
    if found[0] == Path(run_dir).resolve():
        return None  # this very folder: iid.engine.jobs returns it as finished
    return entry, *found


def reuse(config: Mapping[str, Any], run_dir: Path, entry: Mapping[str, Any], source: Path,
          doc: Mapping[str, Any]) -> dict[str, Any]:
    """Give `run_dir` the finished run's results under this job's names; returns its results document."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    shutil.copytree(source / "predictions", run_dir / "predictions", dirs_exist_ok=True)
    for name in REPORT_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, run_dir / name)
    ckpt = Path(entry["checkpoint"])
    link = run_dir / "checkpoints" / ckpt.name
    link.parent.mkdir(exist_ok=True)
    try:
        link.unlink(missing_ok=True)
        link.symlink_to(ckpt)
    except OSError:  # no symbolic links here (some file systems): a file naming the checkpoint
        (run_dir / "checkpoints" / "checkpoint.path").write_text(f"{ckpt}\n")
    new = {**doc, "run_dir": str(run_dir), "checkpoint": str(ckpt),
           "reused": {"from": str(source), "fingerprint": entry["fingerprint"], "seconds_saved": entry.get("seconds")}}
    if isinstance(new.get("best_val"), dict):
        new["best_val"] = {**new["best_val"], "path": str(ckpt)}
    exp = config.get("experiment")
    new.pop("experiment", None)
    if exp:
        new["experiment"] = {"name": exp.get("name"), "row": exp.get("row")}
    (run_dir / "results.json").write_text(json.dumps(new, indent=2) + "\n")  # last: it marks the job finished
    print(f"reusing finished run {source} (same config): {duration(entry.get('seconds'))} of training not repeated",
          flush=True)  # fmt: skip
    return new


def duration(seconds: Any) -> str:
    """3m05s, 2h10m: a wall time for a line of text."""
    s = int(seconds or 0)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def saved_seconds(run_dirs: Iterable[Path]) -> tuple[int, float]:
    """(jobs that reused a finished run, wall seconds of training they did not repeat) among run_dirs."""
    n, total = 0, 0.0
    for d in run_dirs:
        try:
            reused = json.loads((Path(d) / "results.json").read_text()).get("reused")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(reused, dict):
            n += 1
            total += float(reused.get("seconds_saved") or 0.0)
    return n, total
