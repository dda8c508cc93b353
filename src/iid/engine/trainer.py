"""pl.Trainer from the trainer group, the checkpoint callbacks, and the run-directory lock.

Checkpoints of a run (`<run_dir>/checkpoints/`):
- best.ckpt: weights + config only, the best epoch on the validation split (never a test set);
- last.ckpt: the resume point with the optimizer state, written at every epoch end (and every
  `checkpoint.every_n_steps` steps), AFTER the best-checkpoint callback has recorded that epoch's
  validation score, so a run resumed from it chooses the same best epoch as the uninterrupted run;
  removed when the run ends cleanly unless `checkpoint.keep_last=true` (it is the largest file).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iid.engine.config import Budget, CheckpointSettings, Hardware
from iid.errors import UserError

log = logging.getLogger("iid.train")


def _checkpoint_base():
    # Lightning runs Checkpoint callbacks after all others, in their list order: ours comes after
    # ModelCheckpoint, so last.ckpt holds the best-checkpoint state of the epoch it closes.
    from pytorch_lightning.callbacks import Checkpoint

    return Checkpoint


class LastCheckpoint:
    """Writes <dirpath>/last.ckpt atomically (tmp + rename) at every training epoch end and, when
    `every_n_steps` is set, every n optimizer steps; a run killed while saving keeps the previous one.

    Resuming from a mid-epoch checkpoint keeps the step count exact; the rest of that epoch is drawn
    afresh from the epoch's sampler stream (rows are drawn with replacement, so no frame is owed).
    """

    def __new__(cls, *args, **kwargs):  # subclass Lightning's Checkpoint lazily: keep imports light
        base = _checkpoint_base()
        if not issubclass(cls, base):
            cls = type(cls.__name__, (cls, base), {})
        return object.__new__(cls)

    def __init__(self, dirpath: str | Path, every_n_steps: int | None = None) -> None:
        self.path = Path(dirpath) / "last.ckpt"
        self.every_n_steps = every_n_steps
        self._saved_step = -1

    def _save(self, trainer) -> None:
        if trainer.sanity_checking:
            return
        tmp = self.path.with_suffix(".ckpt.tmp")
        trainer.save_checkpoint(tmp, weights_only=False)  # with the optimizer, to resume; collective under DDP
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
        self._saved_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = self.every_n_steps
        if n and trainer.global_step % n == 0 and trainer.global_step != self._saved_step:
            self._save(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # always: a checkpoint from the epoch's last batch-end would resume as a mid-epoch one
        self._save(trainer)


class RunDirLock:
    """An exclusive lock on a run directory for the life of a training (rank 0 of the node takes it):
    a second training in the same run_dir would double its logs and resume from a live last.ckpt."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> RunDirLock:
        if int(os.environ.get("LOCAL_RANK", "0")) != 0:  # DDP workers run inside rank 0's lock
            return self
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise UserError(f"another training is running in {self.path.parent}: wait for it, or pass another "
                            "run_dir=") from None  # fmt: skip
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def on_gpu(trainer_kwargs: dict[str, Any]) -> bool:
    """Whether pl.Trainer with these arguments runs on GPUs (accelerator auto: when CUDA is there)."""
    acc = str(trainer_kwargs.get("accelerator", "auto")).lower()
    if acc == "auto":
        import torch

        return torch.cuda.is_available()
    return acc in ("gpu", "cuda")


def cpu_safe(trainer_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments with sync_batchnorm turned off off the GPU (torch's SyncBatchNorm works with GPU
    modules only): `trainer=ddp trainer.accelerator=cpu` runs on CPU processes, each rank with its own
    batch-norm statistics."""
    if trainer_kwargs.get("sync_batchnorm") and not on_gpu(trainer_kwargs):
        if os.environ.get("LOCAL_RANK", "0") == "0":  # the DDP workers Lightning starts say it once more
            log.info("trainer.sync_batchnorm: off on accelerator=%s (SyncBatchNorm needs GPUs): batch-norm "
                     "statistics stay per process", trainer_kwargs.get("accelerator", "auto"))  # fmt: skip
        return {**trainer_kwargs, "sync_batchnorm": False}
    return trainer_kwargs


def quiet_lightning_notes() -> None:
    """Lightning warnings that say nothing about a run, printed by every rank of every run."""
    import warnings

    # the module's on_after_batch_transfer (the transforms) is the hook meant; the DataModule has none
    warnings.filterwarnings("ignore", message=r"You have overridden `on_after_batch_transfer` in `LightningModule`")
    # Lightning's own use of a torch API that torch deprecated (torch.utils._pytree.LeafSpec)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


def make_trainer(
    trainer_kwargs: dict[str, Any],
    hardware: Hardware,
    run_dir: Path,
    loggers: list,
    *,
    budget: Budget | None = None,
    checkpoint: CheckpointSettings | None = None,
    callbacks: Sequence = (),
    has_val: bool = True,
) -> tuple[Any, Any]:
    """pl.Trainer; returns (trainer, best-checkpoint callback or None). With a budget it is a fitting
    trainer (checkpoint callbacks, lr monitor); without one it only evaluates."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, RichProgressBar

    ckpt_dir = run_dir / "checkpoints"
    cbs = list(callbacks)
    best = None
    fit = budget is not None
    if fit and has_val:
        ck = checkpoint or CheckpointSettings()
        best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=ck.monitor, mode=ck.mode, save_top_k=1,
                               save_last=False, save_weights_only=True, enable_version_counter=False)  # fmt: skip
        cbs.append(best)
    if fit:
        cbs.append(LastCheckpoint(ckpt_dir, (checkpoint or CheckpointSettings()).every_n_steps))
        if loggers:
            cbs.append(LearningRateMonitor(logging_interval="epoch"))
    progress = hardware.progress_bar == "rich"
    if progress:
        cbs.append(RichProgressBar())
    extra = {"max_epochs": budget.epochs} if fit else {}
    trainer_kwargs = cpu_safe(trainer_kwargs)
    quiet_lightning_notes()
    try:
        trainer = pl.Trainer(default_root_dir=str(run_dir), logger=loggers or False, callbacks=cbs,
                             enable_progress_bar=progress, use_distributed_sampler=False, **extra,
                             **trainer_kwargs)  # fmt: skip
    except (TypeError, ValueError) as err:  # Lightning's MisconfigurationException is a ValueError
        raise UserError(f"trainer: {str(err).splitlines()[0]}") from None
    return trainer, best
