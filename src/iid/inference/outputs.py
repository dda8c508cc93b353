"""What a run writes: one JSON per input, the CSV summary of the run, and with `overlay=true` a PNG
contact sheet of the scored frames and (videos) an MP4 of them with the overlay.

Colours: the face's crop (what the model saw) in red when its score reaches the threshold, green
otherwise; the ADM's best artifact box in yellow; the score above the face.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

RED, GREEN, YELLOW, WHITE, BLACK = (230, 40, 40), (40, 200, 70), (255, 215, 0), (255, 255, 255), (0, 0, 0)
SUMMARY_FIELDS = ("file", "kind", "status", "score", "decision", "threshold", "frames_scored", "frames_requested",
                  "tracks", "error", "warning", "json")  # fmt: skip


_NUMBERS = re.compile(r"\[[-0-9.eE,\s\[\]]*\]")  # a list of numbers or of such lists (no quotes, braces)


def dumps(doc: dict[str, Any]) -> str:
    """Indented JSON with every list of numbers on one line (a box, a corner, a quad)."""
    text = json.dumps(doc, indent=1)
    return _NUMBERS.sub(lambda m: re.sub(r"\s+", "", m.group(0)).replace(",", ", "), text)


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(dumps(doc) + "\n")
    os.replace(tmp, path)  # a killed run never leaves a half-written result that would be skipped


def write_summary(path: Path, docs: list[tuple[Path, dict[str, Any]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
        w.writeheader()
        for json_path, d in docs:
            row = {k: d.get(k) for k in SUMMARY_FIELDS}
            row["tracks"] = len(d.get("tracks") or [])
            row["json"] = str(json_path)
            if isinstance(row["score"], float):
                row["score"] = f"{row['score']:.6f}"
            w.writerow(row)
    os.replace(tmp, path)


# -- drawing -----------------------------------------------------------------------------------------------
def _poly(img: np.ndarray, quad: np.ndarray, colour: tuple[int, int, int], k: float, thick: int) -> None:
    pts = np.round(np.asarray(quad) * k).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(img, [pts], True, colour, thick, cv2.LINE_AA)


def _label(
    img: np.ndarray, text: str, x: float, y: float, colour: tuple[int, int, int], scale: float
) -> None:
    font, th = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(scale * 2))
    (tw, tht), base = cv2.getTextSize(text, font, scale, th)
    x = int(np.clip(x, 0, max(0, img.shape[1] - tw - 4)))
    y = int(np.clip(y, tht + 4, img.shape[0] - 2))
    cv2.rectangle(img, (x, y - tht - 4), (x + tw + 4, y + base - 2), BLACK, -1)
    cv2.putText(img, text, (x + 2, y - 2), font, scale, colour, th, cv2.LINE_AA)


def draw_frame(image: np.ndarray, scale: float, faces: list[dict[str, Any]], threshold: float) -> np.ndarray:
    """The frame (RGB, already scaled by `scale` from frame pixels) with each face's crop, artifact box
    and score drawn on a copy."""
    img = np.ascontiguousarray(image.copy())
    side = max(img.shape[:2])
    thick = max(1, round(side / 320))
    fs = max(0.4, side / 900)
    for f in faces:
        col = RED if f["score"] >= threshold else GREEN
        if f.get("artifact_quad") is not None:
            # a translucent fill: the box stays visible where it coincides with the crop's outline
            pts = np.round(np.asarray(f["artifact_quad"]) * scale).astype(np.int32).reshape(-1, 1, 2)
            fill = img.copy()
            cv2.fillPoly(fill, [pts], YELLOW, cv2.LINE_AA)
            img = cv2.addWeighted(fill, 0.22, img, 0.78, 0)
            _poly(img, np.array(f["artifact_quad"]), YELLOW, scale, thick)
        _poly(img, np.array(f["face_quad"]), col, scale, thick)
        x0, y0 = np.array(f["face_quad"]).min(0) * scale
        tag = f"{f['score']:.2f}" if f.get("track", 0) == 0 else f"#{f['track']} {f['score']:.2f}"
        _label(img, tag, x0, y0 - 3, col, fs)
    if not faces:
        _label(img, "no face", 4, img.shape[0] - 4, WHITE, fs)
    return img


class Overlay:
    """Collects the annotated frames of one file: tiles for the contact sheet (at most `max_tiles`,
    at equal intervals), and for videos writes the MP4 as frames arrive (in order)."""

    def __init__(self, sheet: Path, video: Path | None, info: dict[str, Any], scored: int, threshold: float,
                 max_tiles: int = 32, tile_width: int = 320) -> None:  # fmt: skip
        self.sheet, self.video, self.threshold = sheet, video, threshold
        self.tile_width = tile_width
        n = max(1, scored)
        self.keep = set(np.round(np.linspace(0, n - 1, min(n, max_tiles))).astype(int).tolist())
        self.tiles: list[np.ndarray] = []
        self.seen = 0
        self.container = self.stream = None
        if video is not None:
            dur, fps = info.get("duration"), info.get("fps") or 25.0
            # the scored frames span the video: play them over its duration (at least 1 frame/s)
            rate = fps if scored >= (info.get("frame_count") or 0) else (scored / dur if dur else 2.0)
            self.rate = Fraction(min(max(rate, 1.0), fps)).limit_denominator(1001)

    def add(self, image: np.ndarray, scale: float, faces: list[dict[str, Any]]) -> None:
        img = draw_frame(image, scale, faces, self.threshold)
        if self.seen in self.keep:
            k = self.tile_width / img.shape[1]
            self.tiles.append(
                cv2.resize(
                    img, (self.tile_width, max(1, round(img.shape[0] * k))), interpolation=cv2.INTER_AREA
                )
            )
        self.seen += 1
        if self.video is not None:
            self._write(img)

    def _write(self, img: np.ndarray) -> None:
        import av

        h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2  # 4:2:0 needs even sides
        if self.container is None:
            self.video.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = self.video.with_name(self.video.stem + ".part.mp4")
            self.container = av.open(str(self.tmp), mode="w")
            self.stream = self.container.add_stream("libx264", rate=self.rate)
            self.stream.width, self.stream.height, self.stream.pix_fmt = w, h, "yuv420p"
            self.stream.options = {"crf": "20", "preset": "veryfast"}
            self.size = (w, h)
        if (w, h) != self.size:
            img = cv2.resize(img, self.size)
        frame = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(img[: self.size[1], : self.size[0]]), format="rgb24"
        )
        self.container.mux(self.stream.encode(frame))

    def close(self, title: str) -> dict[str, str | None]:
        out: dict[str, str | None] = {"sheet": None, "video": None}
        if self.container is not None:
            self.container.mux(self.stream.encode())
            self.container.close()
            os.replace(self.tmp, self.video)
            out["video"] = str(self.video)
        if self.tiles:
            sheet = contact_sheet(self.tiles, title)
            self.sheet.parent.mkdir(parents=True, exist_ok=True)
            ok, buf = cv2.imencode(".png", sheet[:, :, ::-1])
            if ok:
                tmp = self.sheet.with_name(self.sheet.name + ".part")
                buf.tofile(str(tmp))
                os.replace(tmp, self.sheet)
                out["sheet"] = str(self.sheet)
        return out

    def abort(self) -> None:
        if self.container is not None:
            self.container.close()
            Path(self.tmp).unlink(missing_ok=True)


TITLE_FONT, TITLE_SCALE, LEGEND_SCALE, MARGIN, LINE = cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0.5, 8, 22


def text_width(text: str, scale: float = TITLE_SCALE) -> int:
    return cv2.getTextSize(text, TITLE_FONT, scale, 1)[0][0]


def wrap(text: str, width: int, scale: float = TITLE_SCALE) -> list[str]:
    """`text` in lines of at most `width` pixels: broken at spaces, a word longer than a line (a long
    file name) at the last character that fits."""
    lines: list[str] = []
    for word in text.split(" "):
        line = f"{lines[-1]} {word}" if lines else word
        if lines and text_width(line, scale) <= width:
            lines[-1] = line
            continue
        while len(word) > 1 and text_width(word, scale) > width:
            cut = 1
            while cut < len(word) and text_width(word[: cut + 1], scale) <= width:
                cut += 1
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines


def contact_sheet(tiles: list[np.ndarray], title: str, gap: int = 4) -> np.ndarray:
    """Tiles (same width) in a grid under a title bar, RGB. The title wraps to the sheet's width (one
    tile of a photo is 328 px); the legend goes right of its last line, or on a line of its own."""
    n = len(tiles)
    cols = min(n, 8 if n > 16 else 4 if n > 4 else n)
    rows = math.ceil(n / cols)
    tw, th = tiles[0].shape[1], max(t.shape[0] for t in tiles)
    width = cols * (tw + gap) + gap
    lines = wrap(title, width - 2 * MARGIN)
    legend = [("face crop: fake", RED), ("real", GREEN), ("artifact box", YELLOW)]
    widths = [text_width(t, LEGEND_SCALE) + 16 for t, _ in legend]
    beside = text_width(lines[-1]) + 3 * MARGIN + sum(widths) <= width
    fits = sum(widths) + MARGIN <= width
    bar = 12 + LINE * (len(lines) + (0 if beside or not fits else 1))
    sheet = np.full((bar + rows * (th + gap) + gap, width, 3), 24, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = bar + gap + r * (th + gap), gap + c * (tw + gap)
        sheet[y : y + t.shape[0], x : x + tw] = t
    for i, line in enumerate(lines):
        cv2.putText(sheet, line, (MARGIN, 23 + LINE * i), TITLE_FONT, TITLE_SCALE, WHITE, 1, cv2.LINE_AA)
    if fits:  # right-aligned, beside the title's last line when there is room
        base = 23 + LINE * (len(lines) - 1 if beside else len(lines))
        x = width - sum(widths) - MARGIN
        for (text, col), w in zip(legend, widths):
            cv2.rectangle(sheet, (x, base - 10), (x + 9, base - 1), col, -1)
            cv2.putText(sheet, text, (x + 13, base - 1), TITLE_FONT, LEGEND_SCALE, col, 1, cv2.LINE_AA)
            x += w
    return sheet
