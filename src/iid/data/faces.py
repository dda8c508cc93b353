"""Face landmarks (pluggable backends), 5-point similarity alignment onto a canonical template, hull mask.

Adding a landmark backend is one class: subclass `LandmarkBackend`, implement `landmarks`, decorate
with `@register_backend("name")`; `data.landmarks=name` (prepare, train) or `landmarks=name` (predict)
then selects it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from iid.errors import UserError

CROP_SIZE = 224

# Canonical 5-point template for a 224x224 crop at face scale 1, pixel (x, y), in the order
# (left eye centre, right eye centre, nose tip, left mouth corner, right mouth corner), "left" meaning
# image-left. Origin: the widely used ArcFace/InsightFace 112x112 template
#   (38.2946, 51.6963) (73.5318, 51.5014) (56.0252, 71.7366) (41.5493, 92.3655) (70.7299, 92.2041)
# which crops tight (chin and forehead cut). We scale it by 2 to 224 and shrink it by 0.75 about the
# crop centre so that the whole face (chin, forehead, ears' roots) fits with a small margin:
# inter-ocular distance ~53 px, eyes at y ~ 105, mouth at y ~ 166, chin ~ 210.
_ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
TEMPLATE_224 = ((_ARCFACE_112 / 112.0 - 0.5) * 0.75 + 0.5) * CROP_SIZE  # (5, 2)


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG 300-W points -> (5, 2): eye centres (36-41, 42-47), nose tip (30), mouth corners (48, 54)."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


def template(canvas_size: int = 256, face_scale: float = 1.0, crop_size: int = CROP_SIZE) -> np.ndarray:
    """The 5-point template on a `canvas_size` canvas whose centred `crop_size` square is the canonical
    crop; `face_scale` < 1 makes the face smaller (more context), about the crop centre."""
    c = crop_size / 2.0
    pts = (TEMPLATE_224 * (crop_size / CROP_SIZE) - c) * face_scale + c
    return pts + (canvas_size - crop_size) / 2.0


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src -> dst (Umeyama 1991).

    src, dst: (K, 2). Returns the (2, 3) matrix M with dst ~ M @ [x, y, 1].
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # no reflections
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    var_s = (s_c**2).sum() / len(src)
    scale = (sig * sign).sum() / var_s if var_s > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def alignment_matrix(
    landmarks68: np.ndarray, canvas_size: int = 256, face_scale: float = 1.0, crop_size: int = CROP_SIZE
) -> np.ndarray:
    """(2, 3) matrix taking frame pixels to canvas pixels (5-point similarity onto the template)."""
    return similarity_transform(five_points(landmarks68), template(canvas_size, face_scale, crop_size))


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp an (H, W, C) image into a (size, size, C) canvas with a (2, 3) matrix."""
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (K, 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def hull_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size) uint8 0/1 convex hull of the 68 landmarks (canvas pixels)."""
    mask = np.zeros((size, size), dtype=np.uint8)
    pts = np.round(np.asarray(landmarks, dtype=np.float64)).astype(np.int32)
    hull = cv2.convexHull(pts)
    cv2.fillConvexPoly(mask, hull, 1)
    return mask


# ----------------------------------------------------------------------------- landmark backends


class LandmarkBackend:
    """Finds the 68 iBUG landmarks of the largest face in each frame.

    `landmarks(frames, video_path, indices)` gets {frame index: (H, W, 3) uint8 RGB} and returns
    {frame index: (68, 2) float32 pixel (x, y)} for the frames with a face (absent = no face).
    Instances are created once per worker process.
    """

    name: ClassVar[str] = ""

    def landmarks(self, frames: dict[int, np.ndarray], video_path: str) -> dict[int, np.ndarray]:
        raise NotImplementedError

    @classmethod
    def input_files(cls, video_path: str) -> dict[str, Path]:
        """Files besides the video that the landmarks are read from ({role: path}): prepare redoes a
        video when one of them changes or appears."""
        return {}


class LandmarksMissing(UserError):
    """A backend has no landmarks for this video (e.g. no sidecar file): prepare records the video as
    `no_landmarks` and goes on with the others."""


BACKENDS: dict[str, type[LandmarkBackend]] = {}


def register_backend(name: str):
    def deco(cls: type[LandmarkBackend]) -> type[LandmarkBackend]:
        cls.name = name
        BACKENDS[name] = cls
        return cls

    return deco


def get_backend(name: str, **kwargs) -> LandmarkBackend:
    if name not in BACKENDS:
        raise UserError(f"unknown landmark backend {name!r}: choose one of {sorted(BACKENDS)}")
    return BACKENDS[name](**kwargs)


_DLIB_HINT = (
    "landmark backend 'dlib' needs the dlib and face_recognition_models modules, core dependencies of iid: "
    "reinstall it (`make venv`, which builds dlib from source where no dlib-bin wheel exists, or pip install -e .); "
    "on the synthetic benchmark data.landmarks=oracle (prepare, train) or landmarks=oracle (predict) needs neither"
)


def predictor_path() -> Path:
    """The 68-point model file shipped by `face-recognition-models`, found without importing the package
    (its __init__ imports pkg_resources, which recent setuptools no longer provides)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        f = Path(loc) / "models" / "shape_predictor_68_face_landmarks.dat"
        if f.is_file():
            return f
    raise UserError(_DLIB_HINT)


@register_backend("dlib")
class DlibBackend(LandmarkBackend):
    """dlib's HOG frontal face detector + the 68-point predictor shipped by `face-recognition-models`."""

    def __init__(self, upsample: int | None = None) -> None:
        try:
            import dlib
        except ImportError as err:
            raise UserError(_DLIB_HINT) from err
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(predictor_path()))
        self._upsample = upsample

    def landmarks(self, frames: dict[int, np.ndarray], video_path: str) -> dict[int, np.ndarray]:
        out = {}
        for i, img in frames.items():
            img = np.ascontiguousarray(img)
            # upsampling finds faces below ~80 px but costs 4x; only worth it on small frames
            up = self._upsample if self._upsample is not None else int(min(img.shape[:2]) < 480)
            dets = self._detector(img, up)
            if len(dets) == 0 and self._upsample is None and up < 2:
                dets = self._detector(img, up + 1)  # retry finer only where nothing was found
            if len(dets) == 0:
                continue
            best = max(dets, key=lambda r: r.width() * r.height())  # largest face
            shape = self._predictor(img, best)
            out[i] = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        return out


@register_backend("oracle")
class OracleBackend(LandmarkBackend):
    """Ground-truth landmarks from the sidecar `<stem>.landmarks.npy` (T, 68, 2) next to the video
    (the synthetic benchmark writes them). NaN rows mean no face in that frame."""

    @staticmethod
    def sidecar(video_path: str) -> Path:
        p = Path(video_path)
        return p.with_name(p.stem + ".landmarks.npy")

    @classmethod
    def input_files(cls, video_path: str) -> dict[str, Path]:
        return {"landmarks": cls.sidecar(video_path)}

    def landmarks(self, frames: dict[int, np.ndarray], video_path: str) -> dict[int, np.ndarray]:
        sidecar = self.sidecar(video_path)
        try:
            lms = np.load(sidecar, mmap_mode="r")
        except (OSError, ValueError) as err:
            why = "missing" if not sidecar.is_file() else f"unreadable ({err})"
            raise LandmarksMissing(f"oracle landmark file {sidecar} {why}") from None
        if lms.ndim != 3 or lms.shape[1:] != (68, 2):
            raise LandmarksMissing(f"oracle landmark file {sidecar} has shape {lms.shape}, not (T, 68, 2)")
        out = {}
        for i in frames:
            if i < len(lms) and np.isfinite(lms[i]).all():
                out[i] = np.asarray(lms[i], dtype=np.float32)
        return out
