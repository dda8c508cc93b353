"""The flow of `python -m iid.predict`: inputs, resume, workers feeding the batched model, outputs.

Files already scored with the same settings (checkpoint, frames, faces, detector, box options) and
unchanged since (size, modification time) are skipped; a changed threshold only re-decides them. A
file's JSON is written atomically once it is complete, so a killed run resumes where it stopped.

Scores: a face's score is the model's fake probability on its aligned crop; a track's score is the
mean over its frames; the file's score is its track's mean (`faces=largest`: exactly the video score
of evaluation), or with `faces=all` the highest score among the tracks seen in at least
MIN_TRACK_SHARE of the frames with a face (a short track is listed but does not decide). A file
without any face is "no_face": it has no score and is never called real.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iid.errors import UserError
from iid.inference.jobs import Job, PredictSettings, line, plan, predict_settings

log = logging.getLogger("iid.predict")
MIN_TRACK_SHARE = 0.2


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _stat(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass
class FileRun:
    job: Job
    info: dict[str, Any]
    t0: float
    frames: list[Any] = field(default_factory=list)  # worker Frames, arrival (= frame) order
    scores: dict[tuple[int, int], Any] = field(default_factory=dict)
    delivered: int = 0
    docs: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None
    tracker: Any = None
    overlay: Any = None


class Predictor:
    def __init__(self, s: PredictSettings) -> None:
        self.s = s
        from iid.engine import checkpoints

        ckpt = checkpoints.checkpoint_file(s.ckpt)  # a .ckpt, or the run folder iid.train printed
        if not ckpt.is_file():
            raise UserError(f"checkpoint {ckpt} not found")
        self.ckpt = ckpt
        self.fingerprint = {"checkpoint": str(ckpt.resolve()), **{f"checkpoint_{k}": v for k, v in _stat(ckpt).items()},
                            "frames": s.frames, "faces": s.faces, "landmarks": s.landmarks, "detect_size": s.detect_size,
                            "nms_iou": s.nms_iou, "top_boxes": s.top_boxes, "track_iou": s.track_iou}  # fmt: skip
        self.times = {"model": 0.0, "decode": 0.0, "detect": 0.0, "align": 0.0, "model_cpu": 0.0, "decode_cpu": 0.0,
                      "detect_cpu": 0.0, "align_cpu": 0.0, "frames": 0, "faces": 0, "batches": 0,
                      "first_frame": None, "last_scored": None}  # fmt: skip
        self._scorer = None
        # the checkpoint's config (a memory-mapped read) knows the training set: a synthetic one gets a caution
        self.train_config = checkpoints.load_checkpoint(ckpt)[checkpoints.CONFIG_KEY]
        self.caution = checkpoints.SYNTHETIC_CAUTION if checkpoints.trained_on_synthetic(self.train_config) else None

    @property
    def scorer(self):
        """The model, loaded on first use: a run whose files are all done never loads it."""
        if self._scorer is None:
            import torch

            from iid.inference.scoring import Scorer

            s = self.s
            device = ("cuda" if torch.cuda.is_available() else "cpu") if s.device == "auto" else s.device
            self._scorer = Scorer(self.ckpt, device, s.nms_iou, s.top_boxes, jit=s.jit)
            if s.channels_last and self._scorer.device.type == "cpu":
                self._scorer.module.channels_last = True
                self._scorer.module.model.to(memory_format=torch.channels_last)
        return self._scorer

    # -- resume ----------------------------------------------------------------------------------------------
    def finished(self, job: Job) -> dict[str, Any] | None:
        """The stored result of `job` when it is complete for these settings and this file."""
        import json

        try:
            doc = json.loads(job.json_path.read_text())
            same = doc.get("settings") == json.loads(json.dumps(self.fingerprint)) and doc.get(
                "source"
            ) == _stat(job.path)
        except (OSError, ValueError):
            return None
        if not same:
            return None
        if self.s.overlay and doc.get("status") == "scored":
            want = [
                p for p in (job.sheet, job.video if doc.get("kind") == "video" else None) if p is not None
            ]
            if not all(p.is_file() for p in want):
                return None
        if doc.get("threshold") != self.s.threshold:  # only the decision changes
            from iid.inference.outputs import write_json_atomic

            doc["threshold"] = self.s.threshold
            doc["decision"] = None if doc.get("score") is None else _decide(doc["score"], self.s.threshold)
            for t in doc.get("tracks") or []:
                t["decision"] = _decide(t["score"], self.s.threshold)
            write_json_atomic(job.json_path, doc)
        return doc

    # -- the run ---------------------------------------------------------------------------------------------
    def run(self, jobs: list[Job]) -> dict[int, dict[str, Any]]:
        from iid.inference.scoring import alignment
        from iid.inference.worker import InlinePool, ScanSettings, WorkerPool

        s = self.s
        # the alignment from the checkpoint's config: the workers start while the model loads
        align = self._scorer.align if self._scorer else alignment(self.train_config)
        scan = ScanSettings(frames=s.n_frames, landmarks=s.landmarks, detect_size=s.detect_size,
                            every_face=s.faces == "all", align=align,
                            overlay_side=s.overlay_side if s.overlay else None)  # fmt: skip
        tasks = [(j.fid, str(j.path), j.kind) for j in jobs]
        self.jobs = {j.fid: j for j in jobs}
        self.runs: dict[int, FileRun] = {}
        self.done: dict[int, dict[str, Any]] = {}
        self.pending: list[tuple[int, int, int]] = []  # (file, frame position, face)
        if not tasks:
            return self.done
        pool = (
            WorkerPool(s.workers, scan, tasks, ahead=4 * s.batch_size)
            if s.workers > 0
            else InlinePool(scan, tasks)
        )
        try:
            self.scorer  # noqa: B018  (loads the model while the workers start)
            while len(self.done) < len(jobs):
                msg = pool.get(timeout=0 if self.pending else 0.5)
                if msg is None:
                    if self.pending:
                        self.score_batch()
                    elif isinstance(pool, InlinePool):
                        raise RuntimeError("predict: the inline scan ended before every file did")
                    continue
                self.handle(msg)
                if len(self.pending) >= s.batch_size:
                    self.score_batch()
        finally:
            pool.close()
            for r in self.runs.values():
                if r.overlay is not None and r.job.fid not in self.done:
                    r.overlay.abort()
        return self.done

    def handle(self, msg: tuple) -> None:
        from iid.inference.faces import Tracker
        from iid.inference.outputs import Overlay

        kind, fid, body = msg
        if kind == "start":
            job = self.jobs[fid]
            r = self.runs[fid] = FileRun(job, body, time.perf_counter(), tracker=Tracker(self.s.track_iou))
            if self.s.overlay:
                r.overlay = Overlay(job.sheet, job.video if body["kind"] == "video" else None, body,
                                    body["frames_requested"], self.s.threshold)  # fmt: skip
        elif kind == "frame":
            r = self.runs[fid]
            pos = len(r.frames)
            r.frames.append(body)
            for k in ("decode", "detect", "align", "decode_cpu", "detect_cpu", "align_cpu"):
                self.times[k] += body.seconds.get(k, 0.0)
            self.times["frames"] += 1
            if self.times["first_frame"] is None:  # the steady state starts here (workers are up)
                self.times["first_frame"] = time.perf_counter()
            self.pending.extend((fid, pos, i) for i in range(len(body.faces)))
            self.deliver(r)
        elif kind == "end":
            if fid not in self.runs:  # failed before its start message
                self.runs[fid] = FileRun(self.jobs[fid], {"kind": self.jobs[fid].kind}, time.perf_counter())
            self.runs[fid].end = body
            self.deliver(self.runs[fid])

    def score_batch(self) -> None:
        take, self.pending = self.pending[: self.s.batch_size], self.pending[self.s.batch_size :]
        faces = [self.runs[f].frames[p].faces[i] for f, p, i in take]
        t, c = time.perf_counter(), time.process_time()
        res = self.scorer.score(np.stack([c.canvas for c in faces]), np.stack([c.landmarks for c in faces]))
        self.times["model"] += time.perf_counter() - t
        self.times["model_cpu"] += time.process_time() - c  # all of this process's threads (torch's too)
        self.times["last_scored"] = time.perf_counter()
        self.times["faces"] += len(take)
        self.times["batches"] += 1
        touched = []
        for (f, p, i), r in zip(take, res):
            self.runs[f].scores[(p, i)] = r
            if f not in touched:
                touched.append(f)
        for f in touched:
            self.deliver(self.runs[f])

    def deliver(self, r: FileRun) -> None:
        """Frames whose faces are all scored, in order: boxes to frame pixels, tracks, overlay."""
        from iid.inference.scoring import clip_box

        while r.delivered < len(r.frames):
            fr = r.frames[r.delivered]
            if any((r.delivered, i) not in r.scores for i in range(len(fr.faces))):
                break
            faces = []
            for i, crop in enumerate(fr.faces):
                sc = r.scores.pop((r.delivered, i))
                fq = self.scorer.quad(np.array([0.0, 0.0, 1.0, 1.0]), crop.matrix)
                face = {"track": 0, "score": round(sc.score, 6), "face_box": _r(clip_box(fq, fr.width, fr.height)),
                        "face_quad": _r(fq), "artifact_box": None, "artifact_quad": None, "artifact_score": None}  # fmt: skip
                if len(sc.boxes):
                    aq = self.scorer.quad(sc.boxes[0], crop.matrix)
                    face.update(artifact_box=_r(clip_box(aq, fr.width, fr.height)), artifact_quad=_r(aq),
                                artifact_score=round(float(sc.box_scores[0]), 6))  # fmt: skip
                    if len(sc.boxes) > 1:
                        face["artifact_more"] = [{"box": _r(clip_box(q, fr.width, fr.height)), "score": round(float(v), 6)}
                                                 for q, v in ((self.scorer.quad(b, crop.matrix), v)
                                                              for b, v in zip(sc.boxes[1:], sc.box_scores[1:]))]  # fmt: skip
                faces.append(face)
            if self.s.faces == "all" and faces:
                for face, tid in zip(faces, r.tracker.assign([np.array(f["face_box"]) for f in faces])):
                    face["track"] = tid
            r.docs.append({"index": fr.index, "time": None if fr.time is None else round(fr.time, 4),
                           "score": max(f["score"] for f in faces) if faces else None, "faces": faces})  # fmt: skip
            if r.overlay is not None and fr.image is not None:
                r.overlay.add(fr.image, fr.image_scale, faces)
            r.frames[r.delivered] = None  # the canvases and the frame are not needed any more
            r.delivered += 1
        if r.end is not None and r.delivered == len(r.frames):
            self.finish(r)

    def finish(self, r: FileRun) -> None:
        from iid.inference.outputs import write_json_atomic

        job, info, end, s = r.job, r.info, r.end, self.s
        tracks: dict[int, list[float]] = {}
        for fd in r.docs:
            for f in fd["faces"]:
                tracks.setdefault(f["track"], []).append(f["score"])
        with_face = sum(1 for fd in r.docs if fd["faces"])
        track_docs = [{"track": t, "score": round(float(np.mean(v)), 6), "decision": _decide(float(np.mean(v)), s.threshold),
                       "frames": len(v)} for t, v in sorted(tracks.items())]  # fmt: skip
        score = None
        if end["status"] != "ok":
            status = "unreadable"
        elif not with_face:
            status = "no_face"
        else:
            status = "scored"
            main = [t for t in track_docs if t["frames"] >= MIN_TRACK_SHARE * with_face] or track_docs
            score = max(t["score"] for t in main)
        outputs = {"sheet": None, "video": None}
        if r.overlay is not None:
            title = f"{job.path.name}: " + (f"{_decide(score, s.threshold)} {score:.3f} (threshold {s.threshold:g})"
                                            if score is not None else status.replace("_", " "))  # fmt: skip
            title += (
                f", {with_face}/{len(r.docs)} frames with a face, {self.scorer.family} {self.scorer.backbone}"
            )
            outputs = r.overlay.close(title) if status != "unreadable" else (r.overlay.abort() or outputs)
        doc = {
            "file": str(job.path), "kind": info.get("kind", job.kind), "status": status, "error": end.get("error"),
            "warning": "; ".join(w for w in (end.get("warning"), self.caution) if w) or None,
            "score": score, "decision": None if score is None else _decide(score, s.threshold),
            "threshold": s.threshold, "frames_requested": info.get("frames_requested"),
            "frames_decoded": end.get("frames_decoded"), "frames_scored": with_face,
            "width": info.get("width"), "height": info.get("height"), "fps": info.get("fps"),
            "frame_count": info.get("frame_count"), "duration": info.get("duration"),
            "model": {"checkpoint": str(self.ckpt.resolve()), "family": self.scorer.family,
                      "backbone": self.scorer.backbone, "artifact_boxes": bool(self.scorer.has_boxes)},
            "tracks": track_docs, "frames": r.docs, "outputs": outputs,
            "settings": self.fingerprint, "source": _stat(job.path) if job.path.exists() else None,
            "seconds": round(time.perf_counter() - r.t0, 3),
        }  # fmt: skip
        write_json_atomic(job.json_path, doc)
        self.done[job.fid] = doc
        print(line(job.rel, {**doc, "warning": end.get("warning")}), flush=True)  # the caution: once per run


def _decide(score: float, threshold: float) -> str:
    return "fake" if score >= threshold else "real"


def _r(x: Any, nd: int = 2) -> list:
    return np.round(np.asarray(x, dtype=np.float64), nd).tolist()


def predict(cfg: Any) -> dict[str, Any]:
    """Score every file of `input` (the `predict` config); returns the counts and timings."""
    from iid.engine.config import plain_config
    from iid.engine.threads import intra_op_threads
    from iid.inference.outputs import write_summary

    s = predict_settings(plain_config(cfg))
    t0 = time.perf_counter()
    src, out, jobs = plan(s)
    pred = Predictor(s)
    if pred.caution:
        print(f"warning: {pred.caution}", file=sys.stderr, flush=True)
    docs: dict[int, dict[str, Any]] = {}
    todo = []
    for j in jobs:
        d = pred.finished(j)
        if d is None:
            todo.append(j)
        else:
            docs[j.fid] = d
    skipped = len(docs)
    if skipped:
        print(f"{skipped} of {len(jobs)} file(s) scored before with these settings: skipped", flush=True)
    t1 = time.perf_counter()
    # the model gets the cores the workers leave (one each): they must never wait for each other
    with intra_op_threads(s.threads or max(1, _cores() - s.workers)):
        docs.update(pred.run(todo))
    wall = time.perf_counter() - t1
    write_summary(out / "summary.csv", [(j.json_path, docs[j.fid]) for j in jobs])
    counts = {
        k: sum(1 for d in docs.values() if d["status"] == k) for k in ("scored", "no_face", "unreadable")
    }
    tm = pred.times
    rate = ""
    if tm["frames"] > 1 and tm["first_frame"] and (tm["last_scored"] or 0) > tm["first_frame"]:
        # from the first decoded frame on: the model load and the workers' start-up left out
        rate = f", {(tm['frames'] - 1) / (tm['last_scored'] - tm['first_frame']):.1f} frames/s after start-up"
    print(f"scored {counts['scored']}, no face {counts['no_face']}, unreadable {counts['unreadable']}"
          f" ({skipped} skipped as done); {tm['frames']} frames in {wall:.1f} s{rate};"
          f" summary: {out / 'summary.csv'}", flush=True)  # fmt: skip
    return {"counts": counts, "skipped": skipped, "files": len(jobs), "out": str(out), "wall": wall,
            "total": time.perf_counter() - t0, "times": dict(tm), "docs": {str(j.path): docs[j.fid] for j in jobs}}  # fmt: skip
