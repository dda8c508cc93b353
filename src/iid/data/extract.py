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

from iid.data.faces import LandmarkBackend, alignment_matrix, hull_mask, transform_points, warp
from iid.data.records import VideoRecord
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
        """Changes when anything that shapes this video's rows changes (then the shard is redone)."""
        blob = json.dumps(
            [asdict(self), rec.to_dict(), source.to_dict() if source else None], sort_keys=True
        )
        return hashlib.sha1(blob.encode()).hexdigest()


def _is_folder(rec: VideoRecord) -> bool:
    return Path(rec.path).is_dir()


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
            lm = np.load(f).astype(np.float32).reshape(-1, 2)
            if len(lm) >= 68 and np.isfinite(lm[:68]).all():
                out[i] = lm[:68]
    return out


def extract_video(
    rec: VideoRecord, source: VideoRecord | None, cfg: ExtractConfig, backend: LandmarkBackend
) -> tuple[dict[str, np.ndarray], dict]:
    """Rows for one video and its manifest entry. Never raises for bad input: it is recorded instead.

    manifest: status (ok | no_face | unreadable | missing_source), frames_requested, frames_decoded,
    frames_no_face, frames_written, frame_indices, source (none for reals | ok | unpaired | missing |
    unreadable), error.
    """
    s = cfg.store_size
    man: dict = {"status": "ok", "frames_requested": cfg.frames, "frames_decoded": 0, "frames_no_face": 0,
                 "frames_written": 0, "frame_indices": [], "source": "none", "error": None}  # fmt: skip
    try:
        indices, frames = _sample(rec, cfg.frames)
    except VideoReadError as err:
        man.update(status="unreadable", error=str(err))
        return empty_arrays(s), man
    man["frames_decoded"] = len(frames)
    man["frame_indices"] = [int(i) for i in indices]
    lms = folder_landmarks(rec, frames) if _is_folder(rec) else backend.landmarks(frames, rec.path)

    src_frames: dict[int, np.ndarray] = {}
    if rec.label == 1 and rec.source_key is None:
        man["source"] = "unpaired"  # the data set names no source (DFDC): not an error
    elif rec.label == 1:
        if source is None or not Path(source.path).exists():
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
    src_lms = folder_landmarks(source, src_frames) if src_frames and _is_folder(source) else {}
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
