"""One video -> its store rows: decode N frames, landmarks, 5-point alignment onto the canvas, hull mask,
and for a fake its source frames (same indices) warped by the fake's matrix.

Called once per video by `iid.data.preparation` (in worker processes); never in the training hot path.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from iid.data.faces import (
    LandmarkBackend,
    LandmarksMissing,
    alignment_matrix,
    hull_mask,
    transform_points,
    warp,
)
from iid.data.records import VideoRecord
from iid.data.sources._common import VIDEO_EXTS
from iid.data.video import VideoReadError, read_folder_frames, read_frames, sample_folder, sample_video
from iid.data.writer import empty_arrays


@dataclass(frozen=True)
class ExtractConfig:
    frames: int = 32  # frames per video, at equal intervals
    landmarks: str = "dlib"  # landmark backend (iid.data.faces.BACKENDS)
    store_size: int = 256  # canvas side S; its centred crop_size square is the canonical alignment
    face_scale: float = 1.0
    crop_size: int = 224

    def fingerprint(self, rec: VideoRecord, source: VideoRecord | None) -> str:
        """Changes when a setting or the record changes (then the shard is redone). Paths are left out:
        the files themselves are compared by `iid.data.inputs` (a moved data set is not redone)."""
        d = {k: v for k, v in rec.to_dict().items() if k not in ("path", "mask_path")}
        blob = json.dumps([asdict(self), d, source.key if source else None], sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()


def is_video_file(path: str) -> bool:
    """Whether a record's media is a video file (else a frame folder, or nothing listed: empty path)."""
    if not path:
        return False
    p = Path(path)
    return p.is_file() or (not p.is_dir() and p.suffix.lower() in VIDEO_EXTS)


def _is_folder(rec: VideoRecord) -> bool:
    return bool(rec.path) and not is_video_file(rec.path)


def record_inputs(rec: VideoRecord, source: VideoRecord | None, cfg: ExtractConfig) -> dict[str, str | Path | None]:
    """{role: path} of every file `extract_video` reads for `rec` (see iid.data.inputs)."""
    from iid.data.faces import BACKENDS
    from iid.data.sources.deepfakebench import landmark_dir

    out: dict[str, str | Path | None] = {"media": rec.path or None}
    if _is_folder(rec):
        out["landmarks"] = landmark_dir(Path(rec.path))
    elif rec.path and cfg.landmarks in BACKENDS:
        out.update(BACKENDS[cfg.landmarks].input_files(rec.path))
    if rec.label == 1 and rec.source_key:
        out["source"] = source.path if source and source.path else None
        if source is not None and _is_folder(source):
            out["source_landmarks"] = landmark_dir(Path(source.path))
    return out


def _sample(rec: VideoRecord, n: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    return sample_folder(rec.path, n) if _is_folder(rec) else sample_video(rec.path, n)


def _read_at(rec: VideoRecord, indices: np.ndarray) -> dict[int, np.ndarray]:
    return read_folder_frames(rec.path, indices) if _is_folder(rec) else read_frames(rec.path, indices)


def folder_landmarks(rec: VideoRecord, frames: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """DeepfakeBench's per-frame landmark files (81 points; the first 68 are iBUG's)."""
    from iid.data.sources.deepfakebench import landmark_file
    from iid.data.video import folder_frames

    files = dict(folder_frames(rec.path))
    out = {}
    for i in frames:
        f = landmark_file(files[i]) if i in files else None
        if f is not None and f.is_file():
            try:
                lm = np.load(f, allow_pickle=False).astype(np.float32).reshape(-1, 2)
            except (OSError, ValueError):  # a broken landmark file: that frame has no face
                continue
            if len(lm) >= 68 and np.isfinite(lm[:68]).all():
                out[i] = lm[:68]
    return out


def extract_video(
    rec: VideoRecord, source: VideoRecord | None, cfg: ExtractConfig, backend: LandmarkBackend
) -> tuple[dict[str, np.ndarray], dict]:
    """Rows for one video and its manifest entry. Never raises for bad input: it is recorded instead.

    manifest: status (ok | no_face | no_landmarks | unreadable | missing | missing_source),
    frames_requested, frames_decoded, frames_no_face, frames_written, frame_indices, source (none for
    reals | ok | unpaired | missing | unreadable), error.
    """
    s = cfg.store_size
    man: dict = {"status": "ok", "frames_requested": cfg.frames, "frames_decoded": 0, "frames_no_face": 0,
                 "frames_written": 0, "frame_indices": [], "source": "none", "error": None}  # fmt: skip
    if not rec.path or not Path(rec.path).exists():
        why = "its data set lists no frames or file for it" if not rec.path else f"{rec.path} not found"
        man.update(status="missing", error=why)
        return empty_arrays(s), man
    try:
        indices, frames = _sample(rec, cfg.frames)
    except VideoReadError as err:
        man.update(status="unreadable", error=str(err))
        return empty_arrays(s), man
    man["frames_decoded"] = len(frames)
    man["frame_indices"] = [int(i) for i in indices]
    try:
        lms = folder_landmarks(rec, frames) if _is_folder(rec) else backend.landmarks(frames, rec.path)
    except LandmarksMissing as err:  # one video without landmarks must not stop the others
        man.update(status="no_landmarks", error=str(err))
        return empty_arrays(s), man

    src_frames: dict[int, np.ndarray] = {}
    if rec.label == 1 and rec.source_key is None:
        man["source"] = "unpaired"  # the data set names no source (DFDC): not an error
    elif rec.label == 1:
        if source is None or not source.path or not Path(source.path).exists():
            man["source"] = "missing"
            if rec.source_key:
                man["error"] = f"source {rec.source_key} not found"
        else:
            try:
                # the SAME frame indices as the fake: the fake keeps the source's background and timing
                src_frames = _read_at(source, indices)
                man["source"] = "ok"
            except VideoReadError as err:
                man.update(source="unreadable", error=str(err))

    # DeepfakeBench stores each video's own face crop, so fake and source crops differ slightly: there the
    # source is aligned by its own landmarks; for real videos both use the fake's matrix (same geometry).
    src_lms = folder_landmarks(source, src_frames) if src_frames and source is not None and _is_folder(source) else {}
    keep = [i for i in sorted(frames) if i in lms]
    man["frames_no_face"] = len(frames) - len(keep)
    k = len(keep)
    out = {
        "frames": np.zeros((k, s, s, 3), np.uint8),
        "sources": np.zeros((k, s, s, 3), np.uint8),
        "masks": np.zeros((k, s, s), np.uint8),
        "landmarks": np.zeros((k, 68, 2), np.float32),
        "frame_index": np.array(keep, dtype=np.int64),
        "has_source": np.zeros(k, bool),
    }
    for row, i in enumerate(keep):
        m = alignment_matrix(lms[i], s, cfg.face_scale, cfg.crop_size)  # (2, 3) frame -> canvas
        out["frames"][row] = warp(frames[i], m, s)
        canvas_lm = transform_points(lms[i], m)
        out["landmarks"][row] = canvas_lm
        out["masks"][row] = hull_mask(canvas_lm, s)
        src = src_frames.get(i)
        if src is not None and (src.shape == frames[i].shape or i in src_lms):
            ms = alignment_matrix(src_lms[i], s, cfg.face_scale, cfg.crop_size) if i in src_lms else m
            out["sources"][row] = warp(src, ms, s)
            out["has_source"][row] = True
    man["frames_written"] = k
    if k == 0:
        man["status"] = "no_face"
    elif rec.label == 1 and man["source"] not in ("ok", "unpaired"):
        man["status"] = "missing_source"
    return out, man
