"""The frame store reader: one (dataset, split) folder of memory-mapped `.npy` arrays.

Layout (written by `python -m iid.prepare`, see docs/interfaces.md):
`<root>/<dataset>/<split>/{frames,sources,masks,landmarks}.npy` + `index.json` + `videos.json`.

Why memory-mapped `.npy`: a training batch is one sorted fancy index per array (a memcpy per row out
of the page cache), with no image decoding and no per-sample Python in the hot path. A 256x256 RGB
row is 192 KiB, so ~0.45 MiB per frame with source and mask; the OS page cache does the caching and
every data-loader worker shares it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from iid.data.records import VideoRecord
from iid.errors import UserError

ARRAYS = ("frames", "sources", "masks", "landmarks")
FILES = tuple(f"{a}.npy" for a in ARRAYS) + ("index.json", "videos.json")
SPLITS = ("train", "val", "test")
BATCH_ARRAYS = {"image": "frames", "source": "sources", "face_mask": "masks", "landmarks": "landmarks"}


def store_dir(root: str | Path, dataset: str, split: str) -> Path:
    return Path(root) / dataset / split


def store_exists(root: str | Path, dataset: str, split: str) -> bool:
    d = store_dir(root, dataset, split)
    return all((d / f).is_file() for f in FILES)


def prepare_command(dataset: str, root: str | Path, hint: str | None = None) -> str:
    """The command that builds a missing store; `hint` (from the data config) wins when given."""
    if hint:
        return hint
    return f"python -m iid.prepare data={dataset} data.root=<raw {dataset} folder> data.store_root={root}"


def read_videos(root: str | Path, dataset: str, split: str) -> list[VideoRecord]:
    """Only `videos.json` of a store: cheap, used by the cross-split checks."""
    path = store_dir(root, dataset, split) / "videos.json"
    try:
        return [VideoRecord.from_dict(d) for d in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError) as err:
        raise UserError(f"cannot read {path} ({err}): re-run prepare for {dataset}/{split}") from None


class FrameStore:
    """Read-only view of `<root>/<dataset>/<split>/`.

    Per row (frame) it keeps small numpy columns parsed once from index.json:
    `video` (int32 index into `videos`), `frame` (index of the frame in its video), `label` (int8),
    `identity` (int32 index into `identities`, the row's target identity), `has_source` (bool).
    `identities` is the sorted union of row identities and every identity named by the records.
    """

    def __init__(self, root: str | Path, dataset: str, split: str, prepare_hint: str | None = None):
        self.root = Path(root)
        self.dataset = dataset
        self.split = split
        self.prepare_hint = prepare_hint
        self.path = store_dir(root, dataset, split)
        missing = [f for f in FILES if not (self.path / f).is_file()]
        if missing:
            raise UserError(
                f"no frame store for {dataset}/{split} at {self.path} (missing {', '.join(missing)}; "
                f"expected {', '.join(FILES)}): run `{prepare_command(dataset, root, prepare_hint)}`"
            )
        self.videos: list[VideoRecord] = read_videos(root, dataset, split)
        self._load_index()
        self._open_arrays()

    # -- opening -------------------------------------------------------------------------------
    def _bad(self, what: str) -> UserError:
        return UserError(
            f"frame store {self.path} is inconsistent ({what}): delete it and re-run "
            f"`{prepare_command(self.dataset, self.root, self.prepare_hint)}`"
        )

    def _load_index(self) -> None:
        try:
            rows = json.loads((self.path / "index.json").read_text())
        except (OSError, ValueError) as err:
            raise self._bad(f"index.json unreadable: {err}") from None
        video_of = {r.key: i for i, r in enumerate(self.videos)}
        if len(video_of) != len(self.videos):
            raise self._bad("videos.json lists a video key twice")
        try:
            keys = [r["key"] for r in rows]
            self.frame = np.fromiter((r["frame"] for r in rows), np.int32, len(rows))
            self.label = np.fromiter((r["label"] for r in rows), np.int8, len(rows))
            self.has_source = np.fromiter((bool(r["has_source"]) for r in rows), bool, len(rows))
            row_ids = [str(r["identity"]) for r in rows]
        except (KeyError, TypeError) as err:
            raise self._bad(f"index.json row without {err}") from None
        unknown = set(keys) - video_of.keys()
        if unknown:
            raise self._bad(f"index.json names videos absent from videos.json, e.g. {sorted(unknown)[0]}")
        self.video = np.fromiter((video_of[k] for k in keys), np.int32, len(rows))
        names = set(row_ids)
        for r in self.videos:
            names.update(r.identities or (r.identity,))
        self.identities: list[str] = sorted(names)
        id_of = {n: i for i, n in enumerate(self.identities)}
        self.identity = np.fromiter((id_of[n] for n in row_ids), np.int32, len(rows))

    def _open_arrays(self) -> None:
        n = len(self.frame)
        self.arrays: dict[str, np.ndarray] = {}
        for name in ARRAYS:
            try:
                arr = np.load(self.path / f"{name}.npy", mmap_mode="r")
            except (OSError, ValueError) as err:
                raise self._bad(f"{name}.npy unreadable: {err}") from None
            # prepare may preallocate: more array rows than index rows is fine, fewer is not
            if arr.shape[0] < n:
                raise self._bad(f"{name}.npy has {arr.shape[0]} rows, index.json {n}")
            self.arrays[name] = arr
        frames, sources, masks, lms = (self.arrays[a] for a in ARRAYS)
        s = frames.shape[1] if frames.ndim == 4 else -1
        expect = {
            "frames": (frames, (s, s, 3), np.uint8),
            "sources": (sources, (s, s, 3), np.uint8),
            "masks": (masks, (s, s), np.uint8),
            "landmarks": (lms, (68, 2), np.float32),
        }
        for name, (arr, shape, dtype) in expect.items():
            if arr.shape[1:] != shape or arr.dtype != dtype:
                raise self._bad(f"{name}.npy is {arr.dtype}{arr.shape}, expected {np.dtype(dtype)}(N, {shape})")
        self.size = s

    # pickled into spawned data-loader workers: reopen the maps instead of copying the arrays
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("arrays", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open_arrays()

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame)

    @property
    def keys(self) -> list[str]:
        return [r.key for r in self.videos]

    def rows_of_videos(self, video_indices: np.ndarray) -> np.ndarray:
        """All rows whose video index is in `video_indices`, ascending."""
        return np.flatnonzero(np.isin(self.video, video_indices))

    def read_batch(self, rows: np.ndarray, out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Read rows as numpy arrays in the store's layout, in ascending row order.

        Rows are sorted first (locality in the maps; duplicates kept); the returned `frame` field
        holds the rows actually read, in the same order as everything else. Returned keys:
        image, source (B,S,S,3) uint8 HWC; face_mask (B,S,S) uint8; landmarks (B,68,2) float32;
        label int64, identity int64 (store-local: index into self.identities), video int64
        (index into self.videos), frame int64 (row), has_source bool — all (B,).
        `out` may hold preallocated image/source/face_mask/landmarks arrays to read into (e.g.
        shared memory in a data-loader worker, which saves a copy on the way to the main process).
        """
        rows = np.sort(np.asarray(rows, dtype=np.int64).ravel())
        if len(rows) and (rows[0] < 0 or rows[-1] >= len(self)):
            raise IndexError(f"rows outside [0, {len(self)}) in {self.path}")
        out = dict(out or {})
        for key, name in BATCH_ARRAYS.items():
            arr = self.arrays[name]
            if key in out:  # mode="clip": bounds are checked above, and "raise" would buffer `out`
                np.take(arr, rows, axis=0, out=out[key], mode="clip")
            else:
                out[key] = arr[rows]
        has_source = self.has_source[rows]
        if not has_source.all():
            out["source"][~has_source] = 0  # the interface promises zeros; don't trust a preallocated file
        out.update(
            label=self.label[rows].astype(np.int64),
            identity=self.identity[rows].astype(np.int64),
            video=self.video[rows].astype(np.int64),
            frame=rows,
            has_source=has_source,
        )
        return out

    def __repr__(self) -> str:
        return f"FrameStore({self.path}, rows={len(self)}, videos={len(self.videos)}, size={self.size})"
