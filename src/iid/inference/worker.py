"""Decode + detect + align, one file at a time, as a stream of messages; run in worker processes.

`scan_file` yields, for one file:
    ("start", file_id, info)    info: kind, width, height, fps, frame_count, duration, frames_requested
    ("frame", file_id, Frame)   every decoded wanted frame, in order, with its faces (possibly none)
    ("end", file_id, summary)   status ok | unreadable, error, warning, frames_decoded
It never raises for bad input: an unreadable file is an "end" with its one-line reason.

Workers are processes (spawned: no inherited torch threads), so dlib, the decoder and the model
never compete for one interpreter lock; the model in the main process scores while they detect.
The result queue is bounded, so workers run at most a few frames ahead of the model.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from iid.data.extract import ExtractConfig
from iid.errors import UserError
from iid.inference.faces import FaceCrop, FaceFinder, align
from iid.inference.media import VideoStream, read_image, video_info, wanted_indices


@dataclass(frozen=True)
class ScanSettings:
    frames: int | None  # per video at equal intervals; None: every frame
    landmarks: str  # backend
    detect_size: int | None
    every_face: bool
    align: ExtractConfig  # canvas size, face scale, crop size of the checkpoint's prepare
    overlay_side: int | None  # send the frame (its larger side at most this) for the overlay; None: no


@dataclass
class Frame:
    index: int
    time: float | None
    width: int
    height: int
    faces: list[FaceCrop] = field(default_factory=list)
    image: np.ndarray | None = None  # the frame for the overlay (downscaled by `image_scale`)
    image_scale: float = 1.0
    seconds: dict[str, float] = field(default_factory=dict)  # decode, detect, align: wall and *_cpu


def _one_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _clock() -> tuple[float, float]:
    """(wall, this process's CPU) seconds: CPU time per frame does not depend on how busy the machine is."""
    import time

    return time.perf_counter(), time.process_time()


def _frame(img: np.ndarray, index: int, time: float | None, finder: FaceFinder, s: ScanSettings,
           path: str, decode: tuple[float, float]) -> Frame:  # fmt: skip
    h, w = img.shape[:2]
    c0 = _clock()
    lms = finder.find(img, index, path)
    c1 = _clock()
    faces = [align(img, lm, s.align) for lm in lms]
    c2 = _clock()
    fr = Frame(index, time, w, h, faces, seconds={"decode": decode[0], "detect": c1[0] - c0[0], "align": c2[0] - c1[0],
               "decode_cpu": decode[1], "detect_cpu": c1[1] - c0[1], "align_cpu": c2[1] - c1[1]})  # fmt: skip
    if s.overlay_side:
        k = min(1.0, s.overlay_side / max(h, w))
        fr.image = (
            img if k == 1 else cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
        )
        fr.image_scale = k
    return fr


def scan_file(
    file_id: int, path: Path, kind: str, finder: FaceFinder, s: ScanSettings, decode_threads: int = 0
) -> Iterator[tuple]:
    """The messages of one file (module docstring)."""

    summary: dict[str, Any] = {"status": "ok", "error": None, "warning": None, "frames_decoded": 0}
    since = lambda c: tuple(b - a for a, b in zip(c, _clock()))  # noqa: E731
    try:
        if kind == "image":
            c0 = _clock()
            img = read_image(path)
            h, w = img.shape[:2]
            yield ("start", file_id, {"kind": "image", "width": w, "height": h, "fps": None, "frame_count": 1,
                                      "duration": None, "frames_requested": 1})  # fmt: skip
            summary["frames_decoded"] = 1
            yield ("frame", file_id, _frame(img, 0, None, finder, s, str(path), since(c0)))
        else:
            info = video_info(path)
            total, indices = wanted_indices(path, s.frames)
            yield ("start", file_id, {"kind": "video", "width": info.width, "height": info.height, "fps": info.fps,
                                      "frame_count": total, "duration": info.duration,
                                      "frames_requested": total if indices is None else len(indices)})  # fmt: skip
            stream = VideoStream(path, indices, decode_threads)
            c0 = _clock()
            for d in stream:
                dec = since(c0)
                yield ("frame", file_id, _frame(d.image, d.index, d.time, finder, s, str(path), dec))
                c0 = _clock()  # the time the frame waited in the queue is nobody's
            summary["frames_decoded"] = stream.decoded
            summary["warning"] = stream.error
    except UserError as err:  # VideoReadError, a backend's LandmarksMissing
        summary.update(status="unreadable", error=_one_line(err))
    except Exception as err:  # whatever a decoder or detector throws on a bad file: one line, go on
        summary.update(status="unreadable", error=f"{type(err).__name__}: {_one_line(err)}")
    yield ("end", file_id, summary)


# -- worker processes --------------------------------------------------------------------------------------
def _worker_main(wid: int, s: ScanSettings, tasks: mp.Queue, results: mp.Queue) -> None:
    # one core per worker: OpenCV's and FFmpeg's own thread pools would take the model's core
    cv2.setNumThreads(1)
    try:
        finder = FaceFinder(s.landmarks, s.detect_size, s.every_face)
    except Exception as err:  # e.g. dlib missing: the main process reports it in one line
        results.put(("fatal", -1, wid, _one_line(err)))
        return
    while (task := tasks.get()) is not None:
        file_id, path, kind = task
        for msg in scan_file(file_id, Path(path), kind, finder, s, decode_threads=1):
            if msg[0] == "start":
                msg = (*msg, wid)
            results.put(msg)


_STOP = ("stop",)


class WorkerPool:
    """`n` worker processes fed from one task queue; `get(timeout)` returns the next message or None.

    A worker that dies (a crash inside a decoder or dlib) is replaced, and the file it was on ends as
    unreadable."""

    def __init__(self, n: int, s: ScanSettings, tasks: list[tuple[int, str, str]], ahead: int = 32) -> None:
        self.ctx = mp.get_context("spawn")
        self.s = s
        self.tasks: mp.Queue = self.ctx.Queue()
        self.results: mp.Queue = self.ctx.Queue(maxsize=max(2, ahead))
        # a thread of this process keeps the pipe drained while the model computes (torch releases the
        # interpreter lock): a canvas message (~200 KB) does not fit a pipe's 64 KB buffer, so without a
        # reader the worker's sending thread stalls mid-message and the model gets batches of 1 or 2
        self.local: queue.Queue = queue.Queue(maxsize=max(2, ahead))
        self._pump = threading.Thread(target=self._pump_loop, name="iid-predict-pump", daemon=True)
        self._pump.start()
        for t in tasks:
            self.tasks.put(t)
        self.n = n
        self.procs: dict[int, Any] = {}
        self.current: dict[int, int | None] = {}  # worker -> file it is on
        self.synthetic: list[tuple] = []
        self.next_wid = 0
        for _ in range(n):
            self._spawn()
        for _ in range(n):
            self.tasks.put(None)

    def _spawn(self) -> None:
        wid = self.next_wid
        self.next_wid += 1
        p = self.ctx.Process(target=_worker_main, args=(wid, self.s, self.tasks, self.results), daemon=True)
        p.start()
        self.procs[wid], self.current[wid] = p, None

    def _pump_loop(self) -> None:
        while (msg := self.results.get()) != _STOP:
            self.local.put(msg)

    def get(self, timeout: float) -> tuple | None:
        if self.synthetic:
            return self.synthetic.pop(0)
        try:
            msg = self.local.get(timeout=timeout) if timeout > 0 else self.local.get_nowait()
        except queue.Empty:
            self._check()
            return self.synthetic.pop(0) if self.synthetic else None
        if msg[0] == "fatal":
            raise UserError(msg[3])
        if msg[0] == "start":
            self.current[msg[3]] = msg[1]
            msg = msg[:3]
        elif msg[0] == "end":
            for wid, f in self.current.items():
                if f == msg[1]:
                    self.current[wid] = None
        return msg

    def _check(self) -> None:
        for wid, p in list(self.procs.items()):
            if p.is_alive() or p.exitcode == 0:
                continue
            del self.procs[wid]
            f = self.current.pop(wid, None)
            if f is not None:
                self.synthetic.append(("end", f, {"status": "unreadable", "frames_decoded": 0, "warning": None,
                                                  "error": f"the decoding worker crashed (exit code {p.exitcode})"}))  # fmt: skip
            self._spawn()
            self.tasks.put(None)

    def close(self) -> None:
        for p in self.procs.values():
            p.join(timeout=2)
            if p.is_alive():
                p.terminate()
        self.results.put(_STOP)
        for _ in range(50):  # unblock the pump (a run that stopped early leaves messages) until it ends
            while not self.local.empty():
                self.local.get_nowait()
            self._pump.join(timeout=0.1)
            if not self._pump.is_alive():
                break
        self.tasks.cancel_join_thread()
        self.results.cancel_join_thread()


class InlinePool:
    """The same interface in this process (workers=0): no parallelism, for debugging."""

    def __init__(self, s: ScanSettings, tasks: list[tuple[int, str, str]]) -> None:
        finder = FaceFinder(s.landmarks, s.detect_size, s.every_face)
        self._it = (msg for fid, path, kind in tasks for msg in scan_file(fid, Path(path), kind, finder, s))

    def get(self, timeout: float) -> tuple | None:
        return next(self._it, None)

    def close(self) -> None:
        pass
