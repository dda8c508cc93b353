"""What `python -m iid.predict` is asked to do: its settings (conf/predict.yaml), the media files to
score (one Job each, with where its outputs go) and the one line each file gets in the console.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iid.errors import UserError
from iid.settings import bounds, settings


@dataclass(frozen=True)
class PredictSettings:
    """The predict config (src/iid/conf/predict.yaml documents each key)."""

    ckpt: str = "???"
    input: str = "???"
    out: str = "predictions"
    frames: int | str = field(default=32, metadata=bounds(type=object))  # N >= 1 or "all"
    faces: str = field(default="largest", metadata=bounds(choices=("largest", "all")))
    threshold: float = field(default=0.5, metadata=bounds(0, 1))
    overlay: bool = False
    landmarks: str = "dlib"
    detect_size: int | None = field(default=640, metadata=bounds(64, type=int, nullable=True))
    batch_size: int = field(default=16, metadata=bounds(1))
    workers: int = field(default=1, metadata=bounds(0))
    threads: int | None = field(default=None, metadata=bounds(1, type=int, nullable=True))
    device: str = "auto"
    channels_last: bool = True
    jit: bool = True
    nms_iou: float = field(default=0.5, metadata=bounds(0, 1, open_low=True))
    top_boxes: int = field(default=1, metadata=bounds(1))
    track_iou: float = field(default=0.3, metadata=bounds(0, 1, open_low=True))
    overlay_side: int = field(default=1280, metadata=bounds(64))

    @property
    def n_frames(self) -> int | None:
        return None if self.frames == "all" else int(self.frames)


def predict_settings(node: Any) -> PredictSettings:
    s = settings(PredictSettings, "predict", node)
    for key in ("ckpt", "input"):
        if getattr(s, key) in ("???", "", None):
            raise UserError(f"pass {key}=...: python -m iid.predict ckpt=<checkpoint> input=<file or folder>")
    f = s.frames
    if not (f == "all" or (isinstance(f, int) and not isinstance(f, bool) and f >= 1)):
        raise UserError(f"frames={f!r}: a number of frames (>= 1) or all")
    if s.device not in ("auto", "cpu") and not s.device.startswith("cuda"):
        raise UserError(f"device={s.device!r}: auto, cpu or cuda[:N]")
    return s


@dataclass
class Job:
    fid: int
    path: Path
    rel: str
    json_path: Path
    kind: str
    sheet: Path | None
    video: Path | None


def plan(s: PredictSettings) -> tuple[Path, Path, list[Job]]:
    """(input, out, one Job per media file)."""
    from iid.inference.media import find_inputs, kind_of

    src, out = Path(s.input), Path(s.out)
    if not src.exists():
        raise UserError(f"input {src} not found")
    if out.exists() and not out.is_dir():
        raise UserError(f"out={out} is a file: pass a folder")
    files = find_inputs(src, skip=out)
    if not files:
        raise UserError(
            f"no image or video under {src} (images: .jpg .jpeg .png .webp; videos: .mp4 .avi .mov .mkv ...)"
        )
    jobs = []
    for fid, p in enumerate(files):
        rel = p.name if src.is_file() else p.relative_to(src).as_posix()
        base = out / rel
        jobs.append(Job(fid, p, rel, base.with_name(base.name + ".json"), kind_of(p),
                        base.with_name(base.name + ".sheet.png"), base.with_name(base.name + ".overlay.mp4")))  # fmt: skip
    return src, out, jobs


def line(rel: str, doc: dict[str, Any]) -> str:
    """The one line a file gets."""
    st = doc["status"]
    if st == "unreadable":
        return f"{rel}: unreadable ({doc.get('error')})"
    if st == "no_face":
        text = f"{rel}: no face in {doc.get('frames_decoded')} frame(s)"
    else:
        text = (f"{rel}: {doc['decision']} {doc['score']:.3f} ({doc['frames_scored']} of {doc['frames_decoded']} "
                f"frame(s) with a face{', ' + str(len(doc['tracks'])) + ' tracks' if len(doc['tracks']) > 1 else ''})")  # fmt: skip
    return text + (f"; {doc['warning']}" if doc.get("warning") else "")
