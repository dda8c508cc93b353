"""The LightningDataModule: frame stores -> batches of uint8 tensors (see docs/interfaces.md).

Loaders read whole batches: the samplers (iid.data.sampling) yield arrays of rows, the Dataset's
`__getitem__` receives one such array and does one sorted fancy read per store array, and the
DataLoader runs with `batch_size=None` (no per-sample collate). Per-pixel work (MFS, DA,
alignment) happens later, batched on the device.

Sets and indices:
- "train" and "val": `<store_root>/<name>/{train,val}`; the best checkpoint is chosen on "val" only.
- test sets: `<store_root>/<t>/test` for each t in `test_sets`, in that order (`dm.test_sets`);
  `test_dataloader()` returns one loader per set present (a missing one is skipped with one warning).
- `dm.videos[set_name]`: record keys; a batch's `video` indexes that set's list.
- `dm.identities`: names `"<dataset>/<identity>"` (identities of different data sets are different
  people); a batch's `identity` indexes it. Fixed after `setup()`.
- a batch's `frame` is the row in the set's store: unique within a set, so metrics can dedupe.

DDP: the samplers shard by rank themselves (training: own random stream per rank; evaluation:
disjoint slices, no padding, so every test frame is scored exactly once across ranks). They
subclass `DistributedSampler` so that Lightning never wraps them in its padding
`DistributedSamplerWrapper`, whatever `Trainer(use_distributed_sampler=...)` says (set it False
anyway to state the intent). Ranks may run one evaluation step more or less than each other:
metrics sync at epoch end.

The constructor's arguments come from the data, budget and eval groups
(`iid.engine.data.build_datamodule`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.rank_zero import rank_zero_only
from torch.utils.data import DataLoader, Dataset, get_worker_info

from iid.data.records import REAL
from iid.data.sampling import EvalBatchSampler, RandomBatchSampler, equal_interval_rows
from iid.data.store import SPLITS, FrameStore, prepare_command, read_videos, store_exists
from iid.errors import UserError

log = logging.getLogger(__name__)

@rank_zero_only
def _warn(msg: str) -> None:
    log.warning(msg)


@rank_zero_only
def _info(msg: str) -> None:
    log.info(msg)


class StoreBatches(Dataset):
    """Map-style dataset over one store whose `__getitem__` takes a whole batch of rows.

    Returns the batch dict of docs/interfaces.md as torch tensors. `image`/`source` are (B,3,S,S)
    views of the store's HWC rows, i.e. tensors in `torch.channels_last` memory format (no copy;
    call `.contiguous()` if an op needs NCHW-contiguous); `face_mask` is (B,1,S,S).
    """

    def __init__(self, store: FrameStore, identity_map: np.ndarray, shared_memory: bool = True):
        self.store = store
        self.identity_map = identity_map  # (len(store.identities),) store-local -> dm.identities
        self.shared_memory = shared_memory  # in workers, read straight into shared memory

    def __len__(self) -> int:
        return len(self.store)

    def _shared_buffers(self, n: int) -> dict[str, torch.Tensor]:
        """Image-sized outputs allocated in shared memory, so that handing the batch from a worker
        process to the main process does not copy it again (what torch's own collate does)."""
        s = self.store.size
        shapes = {"image": ((n, s, s, 3), torch.uint8), "source": ((n, s, s, 3), torch.uint8),
                  "face_mask": ((n, s, s), torch.uint8), "landmarks": ((n, 68, 2), torch.float32)}
        out = {}
        for key, (shape, dtype) in shapes.items():
            storage = torch.UntypedStorage._new_shared(int(np.prod(shape)) * dtype.itemsize)
            out[key] = torch.empty(0, dtype=dtype).set_(storage, 0, shape)
        return out

    def __getitem__(self, rows: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        rows = np.asarray(rows)
        in_worker = self.shared_memory and get_worker_info() is not None
        shared = self._shared_buffers(len(rows)) if in_worker else {}
        b = self.store.read_batch(rows, out={k: v.numpy() for k, v in shared.items()})
        # keep the shared tensors themselves: a from_numpy view of them would be copied again
        t = {k: shared[k] if k in shared else torch.from_numpy(v) for k, v in b.items()}
        t["image"] = t["image"].permute(0, 3, 1, 2)  # (B,S,S,3) -> (B,3,S,S), channels_last view
        t["source"] = t["source"].permute(0, 3, 1, 2)
        t["face_mask"] = t["face_mask"].unsqueeze(1)  # (B,1,S,S)
        t["identity"] = torch.from_numpy(self.identity_map[b["identity"]])
        return t


class IIDDataModule(pl.LightningDataModule):
    """Train/val/test loaders over the frame stores (see the module docstring).

    Args:
        name: data set trained on (`<store_root>/<name>/{train,val}`).
        store_root: folder holding `<dataset>/<split>/` stores.
        test_sets: data sets evaluated after training, each from `<store_root>/<t>/test`.
        methods: keep only these fake methods (real videos always kept) in train and val; test sets
            are never filtered (supplement §B trains on sub-datasets, tests on all of FF++).
        balance: draw real and fake training rows with equal probability.
        real_only: train on real frames only (a stage such as SBI makes the fakes).
        batches_per_epoch: training batches per epoch (paper: 512), rows drawn with replacement.
        batch_size: per device; eval_batch_size defaults to it.
        test_frames / val_frames: at most this many frames per video at equal intervals (None: all).
        seed: training sampler seed.
        prepare_hint: the prepare command printed when the train/val store is missing.
    """

    def __init__(
        self,
        name: str,
        store_root: str,
        test_sets: Sequence[str] = (),
        methods: Sequence[str] | None = None,
        balance: bool = False,
        real_only: bool = False,
        batches_per_epoch: int = 512,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        test_frames: int | None = None,
        val_frames: int | None = None,
        seed: int = 0,
        pin_memory: bool | None = None,
        prepare_hint: str | None = None,
    ):
        super().__init__()
        if batch_size < 1 or batches_per_epoch < 1:
            raise UserError(f"data: batch_size ({batch_size}) and batches_per_epoch ({batches_per_epoch}) must be >= 1")
        for k, v in (("test_frames", test_frames), ("val_frames", val_frames)):
            if v is not None and v < 1:
                raise UserError(f"data.{k} must be null or >= 1, got {v}")
        if {"train", "val"} & set(test_sets):
            raise UserError("data.test_sets cannot name a set 'train' or 'val'")
        self.name, self.store_root = name, str(store_root)
        self.requested_test_sets = list(dict.fromkeys(test_sets))
        self.methods = list(methods) if methods is not None else None
        self.balance, self.batches_per_epoch = balance, batches_per_epoch
        self.real_only = real_only
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.seed = num_workers, seed
        self.test_frames, self.val_frames = test_frames, val_frames
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.prepare_hint = prepare_hint

        self.identities: list[str] = []
        self._identity_index: dict[str, int] = {}
        self.stores: dict[str, FrameStore] = {}
        self.videos: dict[str, list[str]] = {}
        self.rows: dict[str, np.ndarray] = {}  # set name -> rows the loader visits
        self.test_sets: list[str] = []
        self.stats: dict[str, int] = {}
        self._datasets: dict[str, StoreBatches] = {}

    # -- setup ---------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Open every store once (idempotent). Train/val are required for fit/validate; test sets
        whose store is missing are skipped with a warning."""
        need_train = stage in (None, "fit", "validate")
        if self.stores:  # already set up (e.g. for "test"); fit may still need the train store
            if need_train and "train" not in self.stores:
                self._add("train", FrameStore(self.store_root, self.name, "train", self.prepare_hint))
                self._select_train_rows()
            return
        self._check_disjoint_splits(self.name)
        if need_train or store_exists(self.store_root, self.name, "train"):
            self._add("train", FrameStore(self.store_root, self.name, "train", self.prepare_hint))
        if store_exists(self.store_root, self.name, "val"):
            self._add("val", FrameStore(self.store_root, self.name, "val", self.prepare_hint))
        elif need_train:
            _warn(f"no val store for {self.name} at {self.store_root}/{self.name}/val: validation is disabled")
        for t in self.requested_test_sets:
            if not store_exists(self.store_root, t, "test"):
                _warn(f"skipping test set {t}: no store at {self.store_root}/{t}/test "
                      f"(run `{prepare_command(t, self.store_root)}`)")
                continue
            if t != self.name:
                self._check_disjoint_splits(t)
            self._add(t, FrameStore(self.store_root, t, "test"))
            self.test_sets.append(t)
            self._report_shared_identities(t)
        if "train" in self.stores:
            self._select_train_rows()
        if "val" in self.stores:
            val = self.stores["val"]
            rows = self._method_rows(val)
            self.rows["val"] = equal_interval_rows(rows, val.video[rows], val.frame[rows], self.val_frames)
        for t in self.test_sets:
            s = self.stores[t]
            self.rows[t] = equal_interval_rows(np.arange(len(s)), s.video, s.frame, self.test_frames)

    def _add(self, set_name: str, store: FrameStore) -> None:
        local_to_global = np.empty(len(store.identities), dtype=np.int64)
        for i, ident in enumerate(store.identities):
            name = f"{store.dataset}/{ident}"
            if name not in self._identity_index:
                self._identity_index[name] = len(self.identities)
                self.identities.append(name)
            local_to_global[i] = self._identity_index[name]
        self.stores[set_name] = store
        self.videos[set_name] = store.keys
        self._datasets[set_name] = StoreBatches(store, local_to_global)

    def _check_disjoint_splits(self, dataset: str) -> None:
        """A video key in two splits of one data set would leak test videos into training."""
        seen: dict[str, str] = {}
        for split in SPLITS:
            if not store_exists(self.store_root, dataset, split):
                continue
            for rec in read_videos(self.store_root, dataset, split):
                other = seen.setdefault(rec.key, split)
                if other != split:
                    raise UserError(
                        f"video {rec.key} is in both the {other} and {split} stores of {dataset} under "
                        f"{self.store_root}: fix the split lists and re-run prepare for {dataset}"
                    )

    def _report_shared_identities(self, test_set: str) -> None:
        train = self.stores.get("train") if test_set == self.name else None
        if train is None and store_exists(self.store_root, test_set, "train"):
            recs = read_videos(self.store_root, test_set, "train")
        else:
            recs = train.videos if train is not None else []
        if not recs:
            return
        train_ids = {i for r in recs for i in (r.identities or (r.identity,))}
        test_ids = {i for r in self.stores[test_set].videos for i in (r.identities or (r.identity,))}
        shared = train_ids & test_ids
        if shared:
            _warn(f"{test_set}: {len(shared)} of {len(test_ids)} test identities also appear in its train split "
                  f"({len(train_ids)} train identities)")

    def _method_rows(self, store: FrameStore) -> np.ndarray:
        """Rows of real videos and of fakes whose method is in `methods` (all rows when None)."""
        if self.methods is None:
            return np.arange(len(store))
        present = {r.method for r in store.videos if r.method != REAL}
        absent = [m for m in self.methods if m not in present]
        if absent:
            _warn(f"{store.dataset}/{store.split}: methods {absent} not in the store (present: {sorted(present)})")
        keep_video = np.array([r.method == REAL or r.method in self.methods for r in store.videos], dtype=bool)
        return np.flatnonzero(keep_video[store.video]) if len(store.videos) else np.arange(0)

    def _select_train_rows(self) -> None:
        store = self.stores["train"]
        rows = self._method_rows(store)
        if self.real_only:
            rows = rows[store.label[rows] == 0]
        labels = store.label[rows]
        fake = labels != 0
        n_fake, n_real = int(fake.sum()), int((~fake).sum())
        if n_real == 0 or (n_fake == 0 and not self.real_only):
            raise UserError(
                f"{self.name}/train has {n_real} real and {n_fake} fake frames"
                + (f" with methods {self.methods}" if self.methods is not None else "")
                + ": training needs both (check data.methods or re-run prepare)"
            )
        no_source = int((fake & ~store.has_source[rows]).sum())
        self.stats = {"train_rows": len(rows), "train_real": n_real, "train_fake": n_fake,
                      "train_fake_without_source": no_source}
        if no_source:
            _warn(f"{self.name}/train: {no_source} of {n_fake} fake frames have no source frame "
                  "(they train without MFS pairing)")
        _info(f"{self.name}/train: {len(rows)} frames ({n_real} real, {n_fake} fake)")
        self.rows["train"] = rows

    # -- loaders -------------------------------------------------------------------------------
    def _loader(self, set_name: str, sampler: Any) -> DataLoader:
        return DataLoader(
            self._datasets[set_name],
            sampler=sampler,
            batch_size=None,  # the sampler yields whole batches
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            # train/val are iterated every epoch; a test loader runs once, its workers need not stay
            persistent_workers=self.num_workers > 0 and set_name in ("train", "val"),
        )

    def train_sampler(self) -> RandomBatchSampler:
        store, rows = self.stores["train"], self.rows["train"]
        return RandomBatchSampler(rows, store.label[rows], self.batch_size, self.batches_per_epoch,
                                  balance=self.balance and not self.real_only, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        if "train" not in self.rows:
            self.setup("fit")
        return self._loader("train", self.train_sampler())

    def val_dataloader(self) -> DataLoader | list:
        if "val" not in self.rows:
            return []
        return self._loader("val", EvalBatchSampler(self.rows["val"], self.eval_batch_size))

    def test_dataloader(self) -> list[DataLoader]:
        if not self.stores:
            self.setup("test")
        if not self.test_sets:
            raise UserError(
                f"no test store found for test sets {self.requested_test_sets} under {self.store_root}: "
                f"run `{prepare_command(self.requested_test_sets[0] if self.requested_test_sets else self.name, self.store_root)}`"
            )
        return [self._loader(t, EvalBatchSampler(self.rows[t], self.eval_batch_size)) for t in self.test_sets]
