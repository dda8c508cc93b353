"""Reading checkpoints and choosing the resume point.

Every checkpoint iid writes holds the composed config as a plain dict under `iid_config`, so it
loads with `torch.load(path, weights_only=True)` (no pickled code runs) and rebuilds its model with
nothing else. A file that cannot be read (truncated, empty, not a checkpoint) is one UserError line
naming the file and what to do, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iid.errors import UserError

CONFIG_KEY = "iid_config"  # checkpoint entry holding the composed config (plain dict)
# A model trained on the procedural benchmark has seen rendered faces and rendered manipulations only:
# on real media its score is a number without meaning, however confident it looks.
SYNTHETIC_CAUTION = ("the checkpoint was trained on the synthetic benchmark (data=synthetic): its scores say "
                     "nothing about real faces or real manipulations")  # fmt: skip


def trained_on_synthetic(config: dict[str, Any]) -> bool:
    """Whether a checkpoint's config trained on the embedded synthetic benchmark (its data group has `synth`)."""
    return bool((config.get("data") or {}).get("synth"))


def checkpoint_file(path: str | Path) -> Path:
    """A checkpoint file, or a run folder as `iid.train` prints it: its checkpoints/best.ckpt (a cached
    run's link or `checkpoint.path` note included), else its last.ckpt. Anything else is returned as
    given, for `load_checkpoint` to name in its error."""
    p = Path(str(path)).expanduser()
    if not p.is_dir():
        return p
    folder = p / "checkpoints" if (p / "checkpoints").is_dir() else p
    for cand in (folder / "best.ckpt", folder / "last.ckpt"):
        if cand.is_file():
            return cand
    note = folder / "checkpoint.path"  # a run the run cache filled where links are not possible
    if note.is_file() and Path(note.read_text().strip()).is_file():
        return Path(note.read_text().strip())
    raise UserError(f"ckpt={p}: a folder without checkpoints/best.ckpt (a run not finished?); pass a .ckpt "
                    "file or a finished run's folder")  # fmt: skip


def load_checkpoint(path: str | Path, map_location: Any = "cpu", *, what: str = "checkpoint") -> dict[str, Any]:
    """torch.load(weights_only=True) of a checkpoint written by iid, its config upgraded to today's
    layout; any unreadable or foreign file is a UserError."""
    import torch

    from iid.engine.config import upgrade_config

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist: pass ckpt=<run dir>/checkpoints/<file>.ckpt")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=True)
    except Exception as err:  # truncated zip, empty file, text, a pickle with code: all the file's fault
        reason = (str(err).splitlines() or [type(err).__name__])[0][:160]
        raise UserError(f"cannot read {what} {path} ({type(err).__name__}: {reason}): it is truncated or not "
                        "a checkpoint; use another file (a run's checkpoints/best.ckpt)") from None  # fmt: skip
    if not isinstance(ckpt, dict) or CONFIG_KEY not in ckpt or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a checkpoint written by iid.train (no {CONFIG_KEY!r} and state_dict)")
    if not isinstance(ckpt[CONFIG_KEY], dict):
        raise UserError(f"{path}: its {CONFIG_KEY!r} entry is not a config")
    ckpt[CONFIG_KEY] = upgrade_config(ckpt[CONFIG_KEY])
    return ckpt


def resume_checkpoint(resume: str | None, run_dir: Path) -> str | None:
    """`resume=PATH` wins (must be a readable iid checkpoint with its optimizer state); else the run
    directory's last.ckpt when present; else None."""
    if resume:
        p = Path(str(resume)).expanduser()
        if not p.is_file():
            raise UserError(f"resume={resume}: no such checkpoint (give a .ckpt file, or omit resume)")
        _check_resumable(p, f"resume={resume}", "pass another resume=<file>")
        return str(p)
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return None
    _check_resumable(last, f"the resume point {last}", f"delete it to start {run_dir} afresh")
    return str(last)


def _check_resumable(path: Path, what: str, fix: str) -> None:
    try:
        ckpt = load_checkpoint(path, what=what)
    except UserError as err:
        raise UserError(f"{err}; {fix}") from None
    if "optimizer_states" not in ckpt:
        raise UserError(f"{what} holds weights only (no optimizer state), so training cannot continue from it; {fix}")
