"""Which files a run scores and how their frames are read.

Videos are decoded with PyAV (any container it reads) as a stream: only the wanted frames are
converted, one at a time, so a long video never sits in memory and detection starts with the first
frame. The wanted frames are `prepare`'s: `equal_interval_indices(count_frames(path), n)` (the first
and last frame included), or every frame with `frames=all`. Images (JPEG, PNG, WebP) are one frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from iid.data.video import VideoReadError, count_frames, equal_interval_indices

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")
# what a folder run picks up as video (a single file of any other extension is tried as a video)
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts", ".3gp")


def kind_of(path: Path) -> str:
    return "image" if path.suffix.lower() in IMAGE_EXTS else "video"


def find_inputs(root: Path, skip: Path | None = None) -> list[Path]:
    """The media files under `root` (recursively, sorted), or [root] for a file; files under `skip`
    (the run's own output folder) are left out."""
    if root.is_file():
        return [root]
    skip = skip.resolve() if skip is not None else None
    out = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in IMAGE_EXTS + VIDEO_EXTS or not p.is_file():
            continue
        if skip is not None and p.resolve().is_relative_to(skip):
            continue
        out.append(p)
    return out


@dataclass
class MediaInfo:
    kind: str  # video | image
    width: int
    height: int
    fps: float | None = None
    frame_count: int | None = None  # video packets (what `prepare` counts)
    duration: float | None = None  # seconds


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; EXIF orientation applied, alpha dropped, 16-bit scaled to 8."""
    data = np.fromfile(str(path), dtype=np.uint8)  # also paths OpenCV cannot open by name
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise VideoReadError("not a readable image")
    return np.ascontiguousarray(img[:, :, ::-1])


def video_info(path: Path) -> MediaInfo:
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError("no video stream")
            s = container.streams.video[0]
            fps = float(s.average_rate) if s.average_rate else None
            dur = float(s.duration * s.time_base) if s.duration and s.time_base else None
            if dur is None and container.duration:
                dur = container.duration / av.time_base
            w, h = s.codec_context.width, s.codec_context.height
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise VideoReadError(f"not a readable video: {_why(err)}") from None
    if not w or not h:
        raise VideoReadError("the video stream has no frame size")
    return MediaInfo("video", int(w), int(h), fps, None, dur)


def wanted_indices(path: Path, frames: int | None) -> tuple[int, np.ndarray | None]:
    """(frame count, the indices to score: None for every frame)."""
    total = count_frames(path)
    if total == 0:
        raise VideoReadError("the video has no frames")
    return total, None if frames is None else equal_interval_indices(total, frames)


@dataclass
class Decoded:
    index: int
    time: float | None
    image: np.ndarray  # (H, W, 3) uint8 RGB


class VideoStream:
    """Iterate the wanted frames of a video; after the loop, `error` holds what stopped decoding
    early (a truncated or corrupt file), or None."""

    def __init__(self, path: Path, indices: np.ndarray | None, threads: int = 0) -> None:
        self.path, self.threads = path, threads  # decoder threads (0: FFmpeg's choice)
        self.indices = None if indices is None else {int(i) for i in indices}
        self.last = None if indices is None or len(indices) == 0 else int(max(indices))
        self.error: str | None = None
        self.decoded = 0

    def __iter__(self) -> Iterator[Decoded]:
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as err:
            raise VideoReadError(f"not a readable video: {_why(err)}") from None
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.thread_count = self.threads
            i = 0
            try:
                for frame in container.decode(stream):
                    if self.indices is None or i in self.indices:
                        self.decoded += 1
                        yield Decoded(i, float(frame.time) if frame.time is not None else None,
                                      frame.to_ndarray(format="rgb24"))  # fmt: skip
                    if self.last is not None and i >= self.last:
                        break
                    i += 1
            except (av.error.FFmpegError, ValueError) as err:  # truncated / corrupt mid-stream
                self.error = f"decoding stopped at frame {i} ({_why(err)})"
        finally:
            container.close()
        if self.decoded == 0:
            raise VideoReadError("no frame decodes" + (f": {self.error}" if self.error else ""))


def _why(err: BaseException) -> str:
    """PyAV's reason without the file name it repeats (the run's line names the file)."""
    return str(getattr(err, "strerror", None) or err).strip()
