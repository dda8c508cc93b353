"""Validated settings of the training-data transforms (MFS, DA) and of the SBI stage, built from
Hydra/OmegaConf nodes or plain mappings.

Every bad value is a `UserError` with one line naming the key (`mfs.p_global=1.3: ...`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from iid.errors import UserError
from iid.settings import bounds, settings


@dataclass(frozen=True)
class MFSConfig:
    """Multi-scale Facial Swap (paper 4.2); defaults are the reference's probabilities."""

    enabled: bool = True
    p_global: float = 0.8  # share of fakes (with a source) going to the global swap; the rest partial
    # global swap directions, summing to 1: paste the source face into the fake / the fake face into
    # the source / keep the fake as is.
    p_source_into_fake: float = 0.5
    p_fake_into_source: float = 0.25
    p_keep: float = 0.25
    windows: tuple[tuple[int, int], ...] = ((40, 80), (80, 120), (120, 160), (224, 224))  # (h, w) px @224
    both_orientations: bool = True  # (h, w) and (w, h); the reference only used (h, w)
    crop_size: int = 224  # side of the canonical crop centred on the canvas
    p_poisson: float = 0.5  # else alpha blending
    p_elastic: float = 0.5  # elastic deformation of the global mask
    elastic_alpha: tuple[float, float] = (300.0, 500.0)
    elastic_sigma: float = 0.08  # fraction of the canvas height
    blur_kernel: int = 5  # alpha-blending mask blur (reference: 5x5, sigma 3)
    blur_sigma: float = 3.0
    min_dssim: float = 1e-3  # partial swap skipped (fake kept whole) when the best window mean DSSIM is below


@dataclass(frozen=True)
class DAConfig:
    """Device-side data augmentation after MFS (paper 5.1: random crop, Gaussian blur/noise, JPEG)."""

    enabled: bool = True
    # alignment jitter (reference get_align5p): face scale ~ N(scale_mean, scale_std) clipped to
    # scale_range, translation U(-t, t) px at 224, rotation max_rotation * U(-1, 1)^3 degrees.
    p_affine: float = 1.0
    scale_mean: float = 1.0
    scale_std: float = 0.1
    scale_range: tuple[float, float] = (0.75, 1.25)
    max_translate: float = 25.0
    max_rotation: float = 30.0
    p_flip: float = 0.5
    p_jpeg: float = 0.3
    jpeg_quality: tuple[float, float] = (15.0, 80.0)
    p_color: float = 0.3  # brightness, saturation, gamma (the reference's HSV + gamma jitter)
    brightness: tuple[float, float] = (0.5, 1.5)
    saturation: tuple[float, float] = (0.5, 1.15)
    gamma: tuple[float, float] = (0.6, 1.4)
    p_blur: float = 0.3
    blur_kernel: int = 5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    p_noise: float = 0.3
    noise_std: tuple[float, float] = (0.0, 22.0 / 255)
    min_box_px: float = 4.0  # a partial box clipped below this side falls back to the whole image


def _to_plain(node: Any) -> dict:
    if node is None:
        return {}
    try:  # OmegaConf DictConfig
        from omegaconf import DictConfig, OmegaConf

        if isinstance(node, DictConfig):
            node = OmegaConf.to_container(node, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if dataclasses.is_dataclass(node):
        return dataclasses.asdict(node)
    if not isinstance(node, Mapping):
        raise UserError(f"augmentation config must be a mapping, got {type(node).__name__}")
    return dict(node)


def _convert(group: str, name: str, default: Any, value: Any) -> Any:
    where = f"{group}.{name}={value!r}"
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(default, int):
            if isinstance(value, bool) or int(value) != value:
                raise TypeError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if name == "windows":
            wins = tuple((int(h), int(w)) for h, w in value)
            return wins
        if isinstance(default, tuple):
            lo, hi = (float(v) for v in value)
            return (lo, hi)
    except (TypeError, ValueError):
        raise UserError(f"{where}: expected a value like {default!r}") from None
    return value


def _build(cls, group: str, node: Any):
    raw = _to_plain(node)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise UserError(f"{group}: unknown key(s) {unknown}; known: {sorted(known)}")
    defaults = cls()
    values = {k: _convert(group, k, getattr(defaults, k), v) for k, v in raw.items()}
    cfg = cls(**values)
    for f in fields(cls):
        v = getattr(cfg, f.name)
        if f.name.startswith("p_") and not 0.0 <= v <= 1.0:
            raise UserError(f"{group}.{f.name}={v}: a probability must lie in [0, 1]")
        if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], float) and v[0] > v[1]:
            raise UserError(f"{group}.{f.name}={list(v)}: range must be [low, high] with low <= high")
    return cfg


def mfs_config(node: Any = None) -> MFSConfig:
    """MFSConfig from a mapping / DictConfig / MFSConfig (None -> defaults); raises UserError."""
    if isinstance(node, MFSConfig):
        return node
    cfg = _build(MFSConfig, "mfs", node)
    split = cfg.p_source_into_fake + cfg.p_fake_into_source + cfg.p_keep
    if abs(split - 1.0) > 1e-6:
        raise UserError(
            f"mfs: p_source_into_fake + p_fake_into_source + p_keep = {split:g}, they must sum to 1"
        )
    if not cfg.windows:
        raise UserError("mfs.windows: give at least one [h, w] window")
    for h, w in cfg.windows:
        if not (0 < h <= cfg.crop_size and 0 < w <= cfg.crop_size):
            raise UserError(f"mfs.windows: [{h}, {w}] must be positive and at most mfs.crop_size={cfg.crop_size}")
    if cfg.blur_kernel < 1 or cfg.blur_kernel % 2 == 0:
        raise UserError(f"mfs.blur_kernel={cfg.blur_kernel}: must be a positive odd integer")
    if cfg.elastic_sigma <= 0 or cfg.blur_sigma <= 0:
        raise UserError("mfs: elastic_sigma and blur_sigma must be > 0")
    return cfg


def da_config(node: Any = None) -> DAConfig:
    """DAConfig from a mapping / DictConfig / DAConfig (None -> defaults); raises UserError."""
    if isinstance(node, DAConfig):
        return node
    cfg = _build(DAConfig, "da", node)
    if cfg.scale_range[0] <= 0 or cfg.scale_std < 0:
        raise UserError(f"da.scale_range={list(cfg.scale_range)}: scales must be > 0 (and scale_std >= 0)")
    if cfg.blur_kernel < 1 or cfg.blur_kernel % 2 == 0:
        raise UserError(f"da.blur_kernel={cfg.blur_kernel}: must be a positive odd integer")
    if not (1 <= cfg.jpeg_quality[0] and cfg.jpeg_quality[1] <= 100):
        raise UserError(f"da.jpeg_quality={list(cfg.jpeg_quality)}: must lie within [1, 100]")
    if cfg.blur_sigma[0] <= 0:
        raise UserError(f"da.blur_sigma={list(cfg.blur_sigma)}: sigmas must be > 0")
    return cfg


__all__ = ["MFSConfig", "DAConfig", "mfs_config", "da_config"]


@dataclass(frozen=True)
class SBIConfig:
    """The `sbi` group (conf/sbi/on.yaml): pixel sizes at a 256 canvas."""

    enabled: bool = True
    fake_share: float = field(default=0.5, metadata=bounds(0, 1))
    paired: bool = True
    p_target_jitter: float = field(default=0.0, metadata=bounds(0, 1))
    p_rgb_shift: float = field(default=0.3, metadata=bounds(0, 1))
    rgb_shift: float = field(default=20.0, metadata=bounds(0, 255))
    brightness: float = field(default=0.1, metadata=bounds(0, 1))
    contrast: float = field(default=0.1, metadata=bounds(0, 1))
    p_downscale: float = field(default=0.5, metadata=bounds(0, 1))
    downscale: tuple[int, ...] = field(default=(2, 4), metadata=bounds(1))
    sharpen_alpha: tuple[float, ...] = field(default=(0.2, 0.5), metadata=bounds(0, 1))
    sharpen_lightness: tuple[float, ...] = field(default=(0.5, 1.0), metadata=bounds(0))
    scale: tuple[float, ...] = field(default=(0.95, 1 / 0.95), metadata=bounds(0, open_low=True))
    translate: tuple[float, ...] = field(default=(0.03, 0.015), metadata=bounds(0, 1))
    elastic_alpha: float = field(default=50.0, metadata=bounds(0))
    elastic_sigma: float = field(default=7.0, metadata=bounds(0, open_low=True))
    mask_size: tuple[int, ...] = field(default=(192, 256), metadata=bounds(1))
    kernel1: tuple[int, ...] = field(default=(5, 25), metadata=bounds(1))
    kernel2: tuple[int, ...] = field(default=(5, 25), metadata=bounds(1))
    sigma2: tuple[float, ...] = field(default=(5.0, 45.0), metadata=bounds(0, open_low=True))
    blend_ratios: tuple[float, ...] = field(default=(0.25, 0.5, 0.75, 1.0, 1.0, 1.0), metadata=bounds(0, 1))

    def __post_init__(self) -> None:
        for name in ("sharpen_alpha", "sharpen_lightness", "scale", "translate", "mask_size", "kernel1",
                     "kernel2", "sigma2"):  # fmt: skip
            v = getattr(self, name)
            if len(v) != 2 or (name != "translate" and v[0] > v[1]):
                raise UserError(f"sbi.{name}={list(v)}: give [low, high]" if name != "translate"
                                else f"sbi.translate={list(v)}: give [x, y] fractions of the canvas")
        if not self.downscale or not self.blend_ratios:
            raise UserError("sbi.downscale and sbi.blend_ratios need at least one value")


def sbi_config(node: Any) -> SBIConfig:
    return settings(SBIConfig, "sbi", node)
