"""FaceForensics++: original_sequences/youtube/<comp>/videos/XXX.mp4 and
manipulated_sequences/<method>/<comp>/videos/XXX_YYY.mp4 with the official splits/{train,val,test}.json.

A fake XXX_YYY keeps the background (and frame timing) of target XXX with the face of YYY, so its
paired source is original XXX, its identities are (XXX, YYY), and its split is the split of the pair.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from iid.data.records import REAL, VideoRecord
from iid.data.sources._common import expect_dir, videos_in
from iid.errors import UserError

log = logging.getLogger(__name__)

DATASET = "ffpp"
METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
COMPRESSIONS = ("raw", "c23", "c40")


def _load_splits(root: Path) -> dict[str, str]:
    """video id (XXX, XXX_YYY, YYY_XXX) -> split, from the official pair lists."""
    where = root / "splits"
    if not (where / "train.json").is_file() and (root / "train.json").is_file():
        where = root  # DeepfakeBench keeps the lists at the root
    out: dict[str, str] = {}
    for split in ("train", "val", "test"):
        f = where / f"{split}.json"
        if not f.is_file():
            raise UserError(f"no FF++ split lists at {root}: expected splits/{split}.json (official pair lists)")
        try:
            pairs = json.loads(f.read_text())
        except json.JSONDecodeError as err:
            raise UserError(f"unreadable FF++ split list {f}: {err}") from err
        for a, b in pairs:
            for vid in (a, b, f"{a}_{b}", f"{b}_{a}"):
                if out.get(vid, split) != split:
                    raise UserError(f"FF++ split lists put video {vid} in both {out[vid]} and {split}")
                out[vid] = split
    return out


def read_ffpp(
    root: str | Path, *, compression: str = "c23", methods: Sequence[str] | None = None, **_: object
) -> list[VideoRecord]:
    root = Path(root)
    if compression not in COMPRESSIONS:
        raise UserError(f"FF++ compression must be one of {COMPRESSIONS}, got {compression!r}")
    real_dir = expect_dir(root, f"original_sequences/youtube/{compression}/videos", "FF++")
    splits = _load_splits(root)
    if methods is None:
        methods = [m for m in METHODS if (root / "manipulated_sequences" / m / compression / "videos").is_dir()]
    else:
        methods = list(methods)
        for m in methods:
            expect_dir(root, f"manipulated_sequences/{m}/{compression}/videos", f"FF++ method {m}")

    records: list[VideoRecord] = []
    unlisted = 0
    for p in videos_in(real_dir):
        vid = p.stem
        if vid not in splits:
            unlisted += 1
            continue
        records.append(
            VideoRecord(DATASET, REAL, vid, 0, splits[vid], str(p), (vid,), compression, None, None)
        )
    for m in methods:
        mask_dir = root / "manipulated_sequences" / m / "masks" / "videos"
        for p in videos_in(root / "manipulated_sequences" / m / compression / "videos"):
            vid = p.stem
            parts = vid.split("_")
            if len(parts) != 2 or vid not in splits:
                unlisted += 1
                continue
            target, source = parts
            mask = mask_dir / p.name
            records.append(
                VideoRecord(
                    DATASET, m, vid, 1, splits[vid], str(p), (target, source), compression,
                    f"{DATASET}/{REAL}/{target}", str(mask) if mask.is_file() else None,
                )
            )  # fmt: skip
    if unlisted:
        log.warning("FF++: %d videos at %s are in no official split list and were left out", unlisted, root)
    return records
