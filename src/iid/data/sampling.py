"""Batch samplers over frame-store rows: random training batches, disjoint DDP-safe evaluation.

Both yield whole batches (numpy int64 arrays of rows) so that a Dataset reads one batch with one
sorted fancy index per array. Use them as `DataLoader(dataset, sampler=<this>, batch_size=None)`.

Both handle distribution themselves (rank and world size read from `torch.distributed` at
iteration time, or given explicitly). Lightning's own replacement (`DistributedSamplerWrapper`,
used when `Trainer(use_distributed_sampler=True)`, the default) pads the evaluation data with
duplicates so every rank has the same count, which would score some test frames twice, and would
shard our already-sharded batches again. Lightning leaves a loader alone when its sampler is a
`DistributedSampler`, so both samplers subclass it (without its constructor): they are used as
they are whatever `use_distributed_sampler` says.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DistributedSampler


def rank_and_world(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """Explicit values win; else torch.distributed's when initialised; else (0, 1)."""
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def equal_interval_rows(rows: np.ndarray, video: np.ndarray, frame: np.ndarray, k: int | None) -> np.ndarray:
    """Keep at most `k` rows per video, at equal intervals over its stored frames (never the first k).

    rows: (R,) row ids; video, frame: (R,) their video index and frame index. Per video with n
    stored frames, keeps positions floor(j*n/k), j = 0..k-1, in frame order. Returns kept rows, sorted.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if k is None or len(rows) == 0:
        return np.sort(rows)
    if k < 1:
        raise ValueError(f"frames per video must be >= 1, got {k}")
    order = np.lexsort((frame, video))  # by video, then frame
    v = video[order]
    starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
    counts = np.diff(np.r_[starts, len(v)])
    n = np.repeat(counts, counts)  # (R,) frames of the row's video
    pos = np.arange(len(v)) - np.repeat(starts, counts)  # (R,) position inside the video
    j = (pos * k + n - 1) // n  # smallest j with j*n/k >= pos
    keep = (n <= k) | ((j < k) & ((j * n) // k == pos))
    return np.sort(rows[order][keep])


class RandomBatchSampler(DistributedSampler):
    """`batches_per_epoch` batches of `batch_size` rows drawn with replacement.

    balance=False: rows uniformly. balance=True: each draw is real or fake with probability 1/2,
    then a row uniformly within that class (equal expected real/fake share whatever the ratio in
    the store). Under DDP each rank yields ceil(batches_per_epoch / world_size) batches from its own
    random stream, so an epoch sees about batches_per_epoch * batch_size rows in total and every
    rank takes the same number of steps. `set_epoch` (called by Lightning) reseeds per epoch;
    without it each new iteration advances the epoch by itself.
    """

    def __init__(
        self,
        rows: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        batches_per_epoch: int,
        balance: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        rows = np.asarray(rows, dtype=np.int64)
        labels = np.asarray(labels)
        if len(rows) == 0:
            raise ValueError("no rows to sample from")
        if batch_size < 1 or batches_per_epoch < 1:
            raise ValueError("batch_size and batches_per_epoch must be >= 1")
        self.rows, self.batch_size, self.batches_per_epoch = rows, batch_size, batches_per_epoch
        self.balance, self.seed, self._rank, self._world = balance, seed, rank, world_size
        self.real = rows[labels == 0]
        self.fake = rows[labels != 0]
        if balance and (len(self.real) == 0 or len(self.fake) == 0):
            raise ValueError(f"balance needs real and fake rows (real {len(self.real)}, fake {len(self.fake)})")
        self.epoch = 0
        self._epoch_set = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._epoch_set = epoch, True

    def __len__(self) -> int:
        _, world = rank_and_world(self._rank, self._world)
        return -(-self.batches_per_epoch // world)

    def __iter__(self) -> Iterator[np.ndarray]:
        rank, _ = rank_and_world(self._rank, self._world)
        rng = np.random.default_rng([self.seed, self.epoch, rank])
        if not self._epoch_set:
            self.epoch += 1
        self._epoch_set = False
        n = len(self) * self.batch_size
        if self.balance:
            is_fake = rng.random(n) < 0.5
            drawn = np.empty(n, dtype=np.int64)
            drawn[is_fake] = self.fake[rng.integers(0, len(self.fake), int(is_fake.sum()))]
            drawn[~is_fake] = self.real[rng.integers(0, len(self.real), int((~is_fake).sum()))]
        else:
            drawn = self.rows[rng.integers(0, len(self.rows), n)]
        yield from drawn.reshape(len(self), self.batch_size)


class EvalBatchSampler(DistributedSampler):
    """Every row exactly once across ranks: rank r takes the r-th of `world_size` contiguous,
    disjoint slices of the sorted rows (sizes differ by at most one row; no padding, no drops),
    cut into batches of at most `batch_size`.

    Ranks may therefore run different numbers of evaluation steps (at most one apart): metrics
    must synchronise at epoch end (torchmetrics does, handling uneven sizes), never per step.
    """

    def __init__(self, rows: np.ndarray, batch_size: int, rank: int | None = None, world_size: int | None = None):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.rows = np.sort(np.asarray(rows, dtype=np.int64))
        self.batch_size, self._rank, self._world = batch_size, rank, world_size

    def shard(self) -> np.ndarray:
        rank, world = rank_and_world(self._rank, self._world)
        return np.array_split(self.rows, world)[rank]

    def __len__(self) -> int:
        return -(-len(self.shard()) // self.batch_size)

    def __iter__(self) -> Iterator[np.ndarray]:
        mine = self.shard()
        for start in range(0, len(mine), self.batch_size):
            yield mine[start : start + self.batch_size]
