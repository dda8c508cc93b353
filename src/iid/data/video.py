"""Video decoding for `prepare`: N frames at equal intervals with PyAV, robust to broken files.

Decoding happens once, here, never in the training hot path. A corrupt or truncated file raises
`VideoReadError` (a `UserError`, so a CLI prints one line) only when no requested frame at all can be
decoded; a file that breaks midway yields the frames decoded before the break, and the caller sees
which indices are missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from iid.errors import UserError


class VideoReadError(UserError):
    """A video file that cannot be opened or decoded at all."""


def equal_interval_indices(total: int, n: int) -> np.ndarray:
    """`n` frame indices spread evenly over `[0, total)`, first and last frame included.

    Never the first N frames (a pitfall of peer suites). With fewer than `n` frames, every frame.
    """
    if total <= 0 or n <= 0:
        return np.zeros(0, dtype=np.int64)
    if total <= n:
        return np.arange(total, dtype=np.int64)
    # rounding a linspace keeps the spacing as even as integers allow and is strictly increasing
    # because total > n
    return np.round(np.linspace(0, total - 1, n)).astype(np.int64)


def count_frames(path: str | Path) -> int:
    """Number of decodable-looking video packets (demux only, no decoding: cheap and exact for mp4)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            n = 0
            for packet in container.demux(stream):
                if packet.size:  # the flush packet at EOF has size 0
                    n += 1
            return n
    except (av.error.FFmpegError, IndexError, OSError) as err:
        raise VideoReadError(f"cannot read video {path}: {err}") from err


def read_frames(path: str | Path, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """Decode the frames at `indices` (0-based decode order) -> {index: (H, W, 3) uint8 RGB}.

    Sequential decode up to the last wanted index; only the wanted frames are kept in memory.
    Frames past a corruption point are absent from the result. Raises `VideoReadError` when the
    file cannot be opened or no wanted frame decodes.
    """
    wanted = sorted({int(i) for i in indices})
    if not wanted:
        return {}
    last = wanted[-1]
    want = set(wanted)
    out: dict[int, np.ndarray] = {}
    error: Exception | None = None
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise VideoReadError(f"cannot open video {path}: {err}") from err
    try:
        if not container.streams.video:
            raise VideoReadError(f"no video stream in {path}")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        i = 0
        try:
            for frame in container.decode(stream):
                if i in want:
                    out[i] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
                i += 1
        except (av.error.FFmpegError, ValueError) as err:  # truncated / corrupt mid-stream
            error = err
    finally:
        container.close()
    if not out:
        why = f": {error}" if error else " (no frames decoded)"
        raise VideoReadError(f"cannot decode video {path}{why}")
    return out


def sample_video(path: str | Path, n: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Frame indices at equal intervals over the whole video and the decoded frames at them."""
    indices = equal_interval_indices(count_frames(path), n)
    if len(indices) == 0:
        raise VideoReadError(f"video {path} has no frames")
    return indices, read_frames(path, indices)


# ----------------------------------------------------------------------------- frame folders


def folder_frames(folder: str | Path) -> list[tuple[int, Path]]:
    """(frame index, image file) of a folder of extracted frames (DeepfakeBench: <index:03d>.png),
    sorted by index; files without a numeric stem are numbered by name order after the last index."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    numbered = [(int(p.stem), p) for p in files if p.stem.isdigit()]
    if len(numbered) != len(files):  # not numbered: use name order
        return list(enumerate(files))
    return sorted(numbered)


def read_image(path: str | Path) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB, or None when the file cannot be decoded."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if img is None else np.ascontiguousarray(img[:, :, ::-1])


def sample_folder(folder: str | Path, n: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Like `sample_video` for a folder of frame images: n of them at equal intervals."""
    if not Path(folder).is_dir():
        raise VideoReadError(f"frame folder {folder} does not exist")
    items = folder_frames(folder)
    picked = [items[i] for i in equal_interval_indices(len(items), n)]
    if not picked:
        raise VideoReadError(f"frame folder {folder} has no images")
    frames = {i: img for i, p in picked if (img := read_image(p)) is not None}
    if not frames:
        raise VideoReadError(f"no readable image in {folder}")
    return np.array([i for i, _ in picked], dtype=np.int64), frames


def read_folder_frames(folder: str | Path, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """The images of `folder` whose frame index is in `indices` (missing/unreadable ones absent)."""
    if not Path(folder).is_dir():
        raise VideoReadError(f"frame folder {folder} does not exist")
    want = {int(i) for i in indices}
    return {i: img for i, p in folder_frames(folder) if i in want and (img := read_image(p)) is not None}
