"""The chunked runner of the batch transforms (iid.augment.pipeline) and stages (iid.augment.sbi): a
random stream per call, scratch and output buffers reused between calls, and on CPU the batch cut
into chunks run on worker threads, each with one intra-op thread.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch
from torch import nn

from iid.engine.threads import intra_op_threads

# CPU work runs in chunks of this many samples. Every intermediate tensor then stays below glibc's
# mmap threshold (32 MB), so its memory is reused instead of mapped and page-faulted in afresh on
# every op (that alone cost a third of the time at batch 128), and chunks are independent units
# for worker threads. A constant, so the random streams do not depend on the thread count.
CPU_CHUNK = 32

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


class ChunkedStage(nn.Module):
    """Random stream, scratch tensors and the chunked runner shared by the batch transforms and stages.

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
        with intra_op_threads(1):
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
