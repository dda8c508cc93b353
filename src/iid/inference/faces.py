"""Faces of a frame, aligned exactly as `prepare` aligns them for training, and face tracks.

Detection: the `dlib` backend of iid.data.faces (HOG detector + the 68-point predictor) with
`prepare`'s upsampling rule (upsample once when the frame's shorter side is below 480 px, retry one
step finer where nothing was found), extended here to every face of a frame (largest first) and to
detection on a copy downscaled to `detect_size` (the larger side) for big frames: the rectangles are
scaled back and the landmarks are fitted on the full-resolution frame. With a frame no larger than
`detect_size` the largest face's landmarks are the backend's, call for call. Any other backend of the
registry (`landmarks=<name>`) gives the largest face only.

Alignment: iid.data.faces' 5-point similarity onto the canvas of the checkpoint's `prepare`
settings (store size, face scale), the same three calls `iid.data.extract` makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from iid.data.extract import ExtractConfig
from iid.data.faces import DlibBackend, LandmarkBackend, alignment_matrix, get_backend, transform_points, warp
from iid.errors import UserError


@dataclass
class FaceCrop:
    """One face of one frame, ready for the model."""

    canvas: np.ndarray  # (S, S, 3) uint8: the aligned canvas, as in the frame store
    landmarks: np.ndarray  # (68, 2) float32 canvas px
    matrix: np.ndarray  # (2, 3) float64 frame px -> canvas px


class DlibFaces(DlibBackend):
    """dlib's detector and predictor (the `dlib` backend's objects), every face, optional downscale."""

    def __init__(self, detect_size: int | None = None) -> None:
        super().__init__(upsample=None)
        self.detect_size = detect_size

    def all_faces(self, img: np.ndarray) -> list[np.ndarray]:
        """(68, 2) float32 landmarks of every face found, the largest first."""
        import dlib

        img = np.ascontiguousarray(img)
        h, w = img.shape[:2]
        f = min(1.0, self.detect_size / max(h, w)) if self.detect_size else 1.0
        small = (
            cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
            if f < 1
            else img
        )
        # prepare's rule, decided on the frame itself: a downscaled big frame is not upsampled again
        up = int(min(h, w) < 480)
        dets = self._detector(small, up)
        if len(dets) == 0 and up < 2:
            dets = self._detector(small, up + 1)
        # sorted() is stable: among equal areas the detector's order decides, as max() does in prepare
        rects = sorted(dets, key=lambda r: r.width() * r.height(), reverse=True)
        out = []
        for r in rects:
            if f < 1:
                r = dlib.rectangle(
                    round(r.left() / f), round(r.top() / f), round(r.right() / f), round(r.bottom() / f)
                )
            shape = self._predictor(img, r)
            out.append(np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32))
        return out

    def landmarks(self, frames: dict[int, np.ndarray], video_path: str) -> dict[int, np.ndarray]:
        out = {}
        for i, img in frames.items():
            faces = self.all_faces(img)
            if faces:
                out[i] = faces[0]
        return out


class FaceFinder:
    """frame -> list of (68, 2) landmarks (largest first): dlib with every face, or a registry backend."""

    def __init__(
        self, backend: str = "dlib", detect_size: int | None = 640, every_face: bool = False
    ) -> None:
        self.every_face = every_face
        self.dlib: DlibFaces | None = DlibFaces(detect_size) if backend == "dlib" else None
        self.backend: LandmarkBackend | None = None if self.dlib else get_backend(backend)
        if every_face and self.dlib is None:
            raise UserError(
                f"faces=all needs the dlib backend (landmark backend {backend!r} gives the largest face only)"
            )

    def find(self, img: np.ndarray, index: int, path: str) -> list[np.ndarray]:
        if self.dlib is not None:
            faces = self.dlib.all_faces(img)
            return faces if self.every_face else faces[:1]
        lm = self.backend.landmarks({index: img}, path)
        return [lm[index]] if index in lm else []


def align(img: np.ndarray, landmarks: np.ndarray, cfg: ExtractConfig) -> FaceCrop:
    """The canvas `prepare` would store for this face (iid.data.extract.extract_video's alignment)."""
    m = alignment_matrix(landmarks, cfg.store_size, cfg.face_scale, cfg.crop_size)
    return FaceCrop(warp(img, m, cfg.store_size), transform_points(landmarks, m).astype(np.float32), m)


# -- tracks --------------------------------------------------------------------------------------------
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of x0y0x1y1 boxes (A, 4) x (K, 4) -> (A, K)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(-1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


class Tracker:
    """Links the faces of successive scored frames into tracks, one per person: each face joins the
    track whose last box overlaps it most (IoU >= `min_iou`, greedy, best pairs first), else starts a
    new one. Frames must come in order."""

    def __init__(self, min_iou: float = 0.3) -> None:
        self.min_iou = min_iou
        self.last: list[np.ndarray] = []  # last box of each track

    def assign(self, boxes: list[np.ndarray]) -> list[int]:
        ids = [-1] * len(boxes)
        if boxes and self.last:
            iou = box_iou(np.array(boxes), np.array(self.last))
            for flat in np.argsort(-iou, axis=None):
                i, t = np.unravel_index(flat, iou.shape)
                if iou[i, t] < self.min_iou:
                    break
                if ids[i] < 0 and t not in ids:
                    ids[i] = int(t)
        for i, box in enumerate(boxes):
            if ids[i] < 0:
                ids[i] = len(self.last)
                self.last.append(box)
            else:
                self.last[ids[i]] = box
        return ids
