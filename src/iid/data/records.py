"""The video record: what every dataset reader yields and what every report keys on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

REAL = "real"


@dataclass(frozen=True)
class VideoRecord:
    dataset: str  # ffpp, celebdf, dfdc, dfdc_preview, deepfakebench, ...
    method: str  # "real" for originals, else the manipulation (Deepfakes, Face2Face, ...)
    video_id: str  # 000_003, id0_0001, ...
    label: int  # 0 real, 1 fake
    split: str  # train / val / test
    path: str  # video file (or a frame folder for DeepfakeBench); "" when the data set lists no media for it
    identities: tuple[str, ...] = field(default_factory=tuple)  # (target,) or (target, source)
    compression: str = "c23"
    source_key: str | None = None  # key of the paired original video for a fake
    mask_path: str | None = None

    @property
    def key(self) -> str:
        """(dataset, method, video id): the one video identifier, never a folder name alone."""
        return f"{self.dataset}/{self.method}/{self.video_id}"

    @property
    def identity(self) -> str:
        """Target identity: the person whose background, pose and motion the video shows."""
        return self.identities[0] if self.identities else self.video_id

    def to_dict(self) -> dict:
        d = asdict(self)
        d["identities"] = list(self.identities)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> VideoRecord:
        d = dict(d)
        d["identities"] = tuple(d.get("identities", ()))
        return cls(**d)
