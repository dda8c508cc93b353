"""Train / eval transforms: batch dict (uint8 canvases from the DataModule) -> model-ready batch dict.

See docs/interfaces.md ("Device-side transforms"). The train transform runs MFS on the canvases,
then DA (one affine warp canvas -> out_size, photometric ops); the eval transform is the fixed
centred warp at a given face scale. Both are nn.Modules with no parameters, run after the batch
reaches its device (LightningModule.on_after_batch_transfer).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from iid.augment.config import DAConfig, MFSConfig, da_config, mfs_config
from iid.augment.da import (
    PhotoDraws,
    affine_grid,
    apply_photometric,
    draw_photometric,
    flip_landmarks,
    photo_shares,
    sample_geometry,
    warp_boxes,
    warp_points,
)
from iid.augment.mfs import (
    KIND_FAKE_INTO_SOURCE,
    KIND_KEEP,
    KIND_PARTIAL,
    KIND_REAL,
    KIND_SOURCE_INTO_FAKE,
    KIND_UNCHANGED,
    MFSDraws,
    MFSOutput,
    draw_mfs,
    swap_faces,
)
from iid.errors import UserError

REQUIRED = ("image", "face_mask", "landmarks", "label")

# CPU work runs in chunks of this many samples. Every intermediate tensor then stays below glibc's
# mmap threshold (32 MB), so its memory is reused instead of mapped and page-faulted in afresh on
# every op (that alone cost a third of the time at batch 128), and chunks are independent units
# for worker threads. A constant, so the random streams do not depend on the thread count.
CPU_CHUNK = 32


def _check(batch: dict[str, Any], need_source: bool) -> None:
    missing = [k for k in REQUIRED + (("source", "has_source") if need_source else ()) if k not in batch]
    if missing:
        raise UserError(f"augment: batch lacks {missing}; expected the DataModule batch of docs/interfaces.md")
    img = batch["image"]
    if img.ndim != 4 or img.shape[1] != 3 or img.shape[2] != img.shape[3]:
        raise UserError(f"augment: batch['image'] must be (B, 3, S, S), got {tuple(img.shape)}")


def _to_unit(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [0, 1] into `out` in one pass; float input is copied and clamped."""
    if x.dtype == torch.uint8:
        return torch.mul(x, 1 / 255, out=out)
    return out.copy_(x).clamp_(0, 1)


@contextmanager
def _intra_op_threads(n: int):
    """torch's intra-op thread count of the calling thread set to n for the block (OpenMP's count
    is per thread: a worker thread's setting leaves the main thread's alone)."""
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before != n:
            torch.set_num_threads(before)


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of `workers` threads, each running torch ops on one intra-op thread
    (per process id: a forked child has none of its parent's threads)."""
    key = (os.getpid(), workers)
    with _POOL_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = ThreadPoolExecutor(
                workers, thread_name_prefix="iid-augment", initializer=torch.set_num_threads, initargs=(1,)
            )
        return pool


class _WorkerChoice:
    """One worker thread or all of them, whichever has recently run a chunk faster (per maximum).

    Each option is tried once, then the faster (exponential average of seconds per chunk) is
    used, and the other re-measured every EXPLORE-th call, so a change in the machine's load
    turns the choice within a few calls."""

    EXPLORE = 8
    DECAY = 0.5

    def __init__(self) -> None:
        self.seconds: dict[tuple[int, int], float] = {}
        self.calls = 0

    def pick(self, most: int) -> int:
        if most <= 1:
            return 1
        self.calls += 1
        options = (1, most)
        for w in options:
            if (most, w) not in self.seconds:
                return w
        best = min(options, key=lambda w: self.seconds[(most, w)])
        if self.calls % self.EXPLORE == 0:
            return options[1] if best == options[0] else options[0]
        return best

    def record(self, most: int, workers: int, seconds: float) -> None:
        if most <= 1:
            return
        key = (most, workers)
        old = self.seconds.get(key)
        self.seconds[key] = seconds if old is None else self.DECAY * old + (1 - self.DECAY) * seconds


def _storage_use_count(t: torch.Tensor) -> int:
    return torch._C._storage_Use_Count(t.untyped_storage()._cdata)


# torch-internal; without it outputs are simply allocated afresh every call
_use_count = _storage_use_count if hasattr(torch._C, "_storage_Use_Count") else None


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (not Linux)
        return os.cpu_count() or 1


class _Seeded(nn.Module):
    """Random stream, scratch tensors and the chunked runner shared by the train and eval transforms.

    On CPU a batch is cut into CPU_CHUNK-sample chunks run by worker threads, each thread with ONE
    intra-op thread. Parallelism across chunks instead of inside each op: the ops are many and
    short, and a 2-thread OpenMP op waits at its barrier for a thread that a busy machine has
    descheduled, so on shared cores per-op threading ran slower than one thread. `workers` fixes
    the thread count; by default it is chosen per call between 1 and the caller's
    torch.get_num_threads() by measured throughput (`_WorkerChoice`): on idle cores two chunk
    threads ran 1.45x one, on cores shared with a dozen other jobs 0.9x, so a fixed choice would
    lose either way. Outputs do not depend on it. On a GPU the batch is one chunk, run inline.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = int(seed)
        self.workers: int | None = None
        self._choice = _WorkerChoice()
        self._gens: dict[str, torch.Generator] = {}
        self._ws: dict[tuple[str, str, int], torch.Tensor] = {}
        self._outs: dict[str, tuple[torch.Tensor, int]] = {}

    def reseed(self, seed: int) -> None:
        """Restart the random stream (e.g. seed + global rank under DDP)."""
        self.seed = int(seed)
        self._gens.clear()

    def workspace(self, name: str, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """A float32 scratch tensor kept between calls, one per thread; sliced to the rows asked for."""
        key = (name, str(device), threading.get_ident())
        ws = self._ws.get(key)
        if ws is None or tuple(ws.shape[1:]) != tuple(shape[1:]) or ws.shape[0] < shape[0]:
            ws = self._ws[key] = torch.empty(shape, device=device)
        return ws[: shape[0]]

    def output(self, name: str, shape: tuple[int, ...], device: torch.device, dtype=torch.float32,
               layout: torch.memory_format = torch.contiguous_format) -> torch.Tensor:  # fmt: skip
        """A tensor for an output of the transform. On CPU the previous call's buffer is handed out
        again once nothing outside this module references it any more (its storage's use count is
        back to ours): a fresh 77 MB tensor costs ~40 ms of page faults here, more than warping into
        it. Handed out as a view, so a caller that keeps the output keeps it from being reused."""
        if device.type != "cpu" or _use_count is None:
            return torch.empty(shape, dtype=dtype, device=device, memory_format=layout)
        held = self._outs.get(name)
        if held is not None:
            buf, ours = held
            if (buf.shape == shape and buf.dtype == dtype and buf.is_contiguous(memory_format=layout)
                    and _use_count(buf) == ours):  # fmt: skip
                return buf.view_as(buf)
        buf = torch.empty(shape, dtype=dtype, memory_format=layout)
        self._outs[name] = (buf, _use_count(buf))
        return buf.view_as(buf)

    def generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._gens:
            self._gens[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._gens[key]

    cpu_chunk = CPU_CHUNK  # rows per CPU chunk (a subclass may choose its own)

    def _spans(self, b: int, device: torch.device) -> list[tuple[int, int]]:
        step = self.cpu_chunk if device.type == "cpu" else max(b, 1)
        return [(i, min(i + step, b)) for i in range(0, b, step)]

    @staticmethod
    def _chunk_generators(gen: torch.Generator, n: int, device: torch.device) -> list[torch.Generator]:
        """One stream per chunk for the draws made inside it (elastic fields, noise pixels), seeded
        from the transform's stream: the same whatever thread runs which chunk."""
        if n <= 1:
            return [gen]
        seeds = torch.randint(0, 2**62, (n,), generator=gen, device=device).tolist()
        return [torch.Generator(device=device).manual_seed(s) for s in seeds]

    @staticmethod
    @contextmanager
    def _cpu_single_threaded(device: torch.device):
        """On CPU the whole call runs with one intra-op thread (yielding the caller's count, the
        most worker threads the chunks may use): even a single multi-threaded op outside the
        chunks stalls at its barrier on busy cores."""
        threads = torch.get_num_threads()
        if device.type != "cpu":
            yield threads
            return
        with _intra_op_threads(1):
            yield threads

    def _run(self, fn: Callable[[int], None], n: int, device: torch.device, threads: int) -> None:
        if device.type != "cpu":
            for i in range(n):
                fn(i)
            return
        most = min(n, self.workers or threads, _cpu_count())
        workers = most if self.workers is not None else self._choice.pick(most)
        t0 = time.perf_counter()
        if workers <= 1:
            for i in range(n):
                fn(i)
        else:
            for _ in _pool(workers).map(fn, range(n)):
                pass
        self._choice.record(most, workers, (time.perf_counter() - t0) / n)

    def _warp_chunk(
        self, canvas: torch.Tensor, face_mask: torch.Tensor, m: torch.Tensor, out_size: int,
        face_out: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Warp a chunk's canvases (n, 3, S, S) [0, 1] and face masks by m (n, 2, 3) to out_size:
        returns the images (n, 3, out, out) and the sampling grid; the mask lands in face_out (uint8)."""
        n, _, s, _ = canvas.shape
        grid = affine_grid(m, out_size, s, self.workspace("grid", (n, out_size, out_size, 2), canvas.device))
        image = F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        face = self.workspace("face", (n, 1, s, s), canvas.device).copy_(face_mask)
        warped = F.grid_sample(face, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        face_out.copy_(warped > 0.5)
        return image, grid


def _assemble(
    batch: dict[str, Any],
    image: torch.Tensor,
    face: torch.Tensor,
    m: torch.Tensor,
    flip: torch.Tensor,
    partial_box: torch.Tensor,
    is_partial: torch.Tensor,
    out_size: int,
    min_box_px: float,
) -> tuple[dict[str, Any], dict[str, float]]:
    """The output dict: warped image and face mask, landmarks and boxes moved by m, flip-reindexed."""
    label = batch["label"].to(image.device)
    b = label.shape[0]
    out = dict(batch)
    out["image"] = image
    out["face_mask"] = face
    out["landmarks"] = flip_landmarks(warp_points(batch["landmarks"].to(image.device).float(), m), flip)
    whole = torch.tensor([0.0, 0.0, 1.0, 1.0], device=image.device).expand(b, 4)
    pbox = warp_boxes(partial_box, m, out_size)
    big = ((pbox[:, 2] - pbox[:, 0]) >= min_box_px) & ((pbox[:, 3] - pbox[:, 1]) >= min_box_px)
    use = is_partial & big
    has_box = label == 1
    boxes = torch.where(use[:, None], pbox / out_size, whole)
    out["boxes"] = torch.where(has_box[:, None], boxes, torch.zeros_like(boxes)).float()
    out["has_box"] = has_box
    areas = (out["boxes"][:, 2] - out["boxes"][:, 0]) * (out["boxes"][:, 3] - out["boxes"][:, 1])
    n_fake = int(has_box.sum())
    stats = {
        "box_mean_area": float(areas[has_box].mean()) if n_fake else 0.0,
        "box_fallback": float((is_partial & ~big).sum()) / max(n_fake, 1),
        "da_flip": float(flip.float().mean()) if b else 0.0,
    }
    return out, stats


class TrainTransform(_Seeded):
    """MFS (optional) then DA (optional) on a DataModule batch; see module docstring."""

    def __init__(self, mfs: MFSConfig, da: DAConfig, out_size: int = 224, seed: int = 0) -> None:
        super().__init__(seed)
        self.mfs = mfs
        self.da = da
        self.out_size = int(out_size)

    @torch.no_grad()
    def forward(self, batch: dict[str, Any], keep_dssim: bool = False) -> dict[str, Any]:
        _check(batch, need_source=self.mfs.enabled)
        with self._cpu_single_threaded(batch["image"].device) as threads:
            return self._forward(batch, keep_dssim, threads)

    def _forward(self, batch: dict[str, Any], keep_dssim: bool, threads: int) -> dict[str, Any]:
        src_img = batch["image"]
        dev = src_img.device
        b, _, s, _ = src_img.shape
        o = self.out_size
        gen = self.generator(dev)
        label = batch["label"].to(dev)
        # All per-sample draws first, for the whole batch, in one fixed order.
        draws: MFSDraws | None = draw_mfs(b, self.mfs, gen, dev) if self.mfs.enabled else None
        m, flip = sample_geometry(b, self.da, gen, dev, s, o, self.mfs.crop_size)
        photo: PhotoDraws | None = draw_photometric(b, gen, dev) if self.da.enabled else None
        spans = self._spans(b, dev)
        gens = self._chunk_generators(gen, len(spans), dev)

        image = self.output("image", (b, 3, o, o), dev)
        face = self.output("face_mask", (b, 1, o, o), dev, torch.uint8)
        swap = self.output("swap_mask", (b, 1, o, o), dev).zero_()
        kind = torch.where(label == 1, KIND_UNCHANGED, KIND_REAL).to(torch.int64)
        box = torch.zeros((b, 4), device=dev)
        poisson = torch.zeros(b, dtype=torch.bool, device=dev)
        elastic = torch.zeros(b, dtype=torch.bool, device=dev)
        dssim = torch.zeros((b, 1, s, s), device=dev) if keep_dssim and self.mfs.enabled else None

        def chunk(i: int) -> None:
            c0, c1 = spans[i]
            sl = slice(c0, c1)
            canvas = self.workspace("canvas", (c1 - c0, 3, s, s), dev)
            if draws is not None:
                res = swap_faces(canvas, src_img[sl], batch["source"][sl], batch["has_source"][sl],
                                 batch["face_mask"][sl], label[sl], self.mfs, draws.rows(c0, c1), gens[i],
                                 keep_dssim=dssim is not None)
                kind[sl], box[sl], poisson[sl], elastic[sl] = res.kind, res.box, res.poisson, res.elastic
                if dssim is not None:
                    dssim[sl] = res.dssim
            else:
                res = None
                _to_unit(src_img[sl], canvas)
            x, grid = self._warp_chunk(canvas, batch["face_mask"][sl], m[sl], o, face[sl])
            if res is not None and res.swap_idx.numel():  # only the swapped samples have a nonzero weight
                swap[sl][res.swap_idx] = F.grid_sample(res.swap_sub, grid[res.swap_idx], mode="bilinear",
                                                       padding_mode="zeros", align_corners=True)
            if photo is not None:
                apply_photometric(x, self.da, photo.rows(c0, c1), gens[i])
            image[sl] = x

        self._run(chunk, len(spans), dev, threads)
        is_partial = kind == KIND_PARTIAL
        art_box, has_art = box, is_partial
        if "has_artifact_box" in batch:  # a stage before this transform (SBI) made these rows' artifacts
            given = batch["has_artifact_box"].to(dev) & ~is_partial
            art_box = torch.where(given[:, None], batch["artifact_box_canvas"].to(dev).float(), box)
            has_art = is_partial | given
        out, stats = _assemble(batch, image, face, m, flip, art_box, has_art, o, self.da.min_box_px)
        out["swap_mask"] = swap
        if photo is not None:
            stats.update(photo_shares(photo, self.da))
        res = MFSOutput(image, kind, box, torch.zeros(0, dtype=torch.long, device=dev),
                        torch.zeros((0, 1, s, s), device=dev), poisson, elastic, dssim)
        out["mfs_kind"] = kind
        out["mfs_box_canvas"] = box
        if dssim is not None:
            out["dssim"] = dssim
        out["stats"] = {**_mfs_stats(res, label), **stats}
        return out


def _mfs_stats(res: MFSOutput, label: torch.Tensor) -> dict[str, float]:
    fakes = label == 1
    n = max(int(fakes.sum()), 1)
    k = res.kind

    def share(mask: torch.Tensor) -> float:
        return float((mask & fakes).sum()) / n

    glob = (k == KIND_KEEP) | (k == KIND_SOURCE_INTO_FAKE) | (k == KIND_FAKE_INTO_SOURCE)
    swapped = (k == KIND_SOURCE_INTO_FAKE) | (k == KIND_FAKE_INTO_SOURCE) | (k == KIND_PARTIAL)
    return {
        "fake_share": float(fakes.float().mean()) if label.numel() else 0.0,
        "mfs_global": share(glob),
        "mfs_source_into_fake": share(k == KIND_SOURCE_INTO_FAKE),
        "mfs_fake_into_source": share(k == KIND_FAKE_INTO_SOURCE),
        "mfs_keep": share(k == KIND_KEEP),
        "mfs_partial": share(k == KIND_PARTIAL),
        "mfs_untouched": share((k == KIND_UNCHANGED) | (k == KIND_KEEP)),
        "mfs_poisson": share(res.poisson & swapped),
        "mfs_elastic": share(res.elastic),
    }


class EvalTransform(_Seeded):
    """Deterministic centred warp canvas -> out_size at `face_scale` (1 = the canonical crop)."""

    def __init__(self, out_size: int = 224, face_scale: float = 1.0, crop_size: int = 224) -> None:
        super().__init__(0)
        if face_scale <= 0:
            raise UserError(f"face_scale={face_scale}: must be > 0 (1.0 = canonical alignment)")
        self.out_size = int(out_size)
        self.face_scale = float(face_scale)
        self.crop_size = int(crop_size)

    @torch.no_grad()
    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        _check(batch, need_source=False)
        with self._cpu_single_threaded(batch["image"].device) as threads:
            return self._forward(batch, threads)

    def _forward(self, batch: dict[str, Any], threads: int) -> dict[str, Any]:
        src_img = batch["image"]
        dev = src_img.device
        b, _, s, _ = src_img.shape
        o = self.out_size
        m, flip = sample_geometry(b, None, self.generator(dev), dev, s, o, self.crop_size, self.face_scale)
        spans = self._spans(b, dev)
        image = self.output("image", (b, 3, o, o), dev)
        face = self.output("face_mask", (b, 1, o, o), dev, torch.uint8)

        def chunk(i: int) -> None:
            sl = slice(*spans[i])
            canvas = _to_unit(src_img[sl], self.workspace("canvas", (sl.stop - sl.start, 3, s, s), dev))
            image[sl] = self._warp_chunk(canvas, batch["face_mask"][sl], m[sl], o, face[sl])[0]

        self._run(chunk, len(spans), dev, threads)
        none = torch.zeros(b, dtype=torch.bool, device=dev)
        out, stats = _assemble(batch, image, face, m, flip, torch.zeros((b, 4), device=dev), none, o, 0.0)
        out["stats"] = stats
        return out


def build_train_transform(mfs_cfg: Any = None, da_cfg: Any = None, out_size: int = 224, seed: int = 0) -> TrainTransform:
    """Train transform from the `mfs` and `da` config groups (mappings, DictConfigs or dataclasses)."""
    return TrainTransform(mfs_config(mfs_cfg), da_config(da_cfg), out_size, seed)


def build_eval_transform(out_size: int = 224, face_scale: float = 1.0) -> EvalTransform:
    """Eval transform: the canonical crop (face_scale 1) or a zoom of it, resized to out_size."""
    return EvalTransform(out_size, face_scale)
