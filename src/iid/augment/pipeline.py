"""Train / eval transforms: batch dict (uint8 canvases from the DataModule) -> model-ready batch dict.

See docs/interfaces.md ("Device-side transforms"). The train transform runs MFS on the canvases,
then DA (one affine warp canvas -> out_size, photometric ops); the eval transform is the fixed
centred warp at a given face scale. Both are nn.Modules with no parameters, run after the batch
reaches its device (LightningModule.on_after_batch_transfer).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from iid.augment.config import DAConfig, MFSConfig, da_config, mfs_config
from iid.augment.da import (
    affine_grid,
    flip_landmarks,
    photometric,
    sample_geometry,
    warp_boxes,
    warp_images,
    warp_points,
)
from iid.augment.mfs import (
    KIND_FAKE_INTO_SOURCE,
    KIND_KEEP,
    KIND_PARTIAL,
    KIND_REAL,
    KIND_SOURCE_INTO_FAKE,
    KIND_UNCHANGED,
    MFSOutput,
    multi_scale_facial_swap,
)
from iid.errors import UserError

REQUIRED = ("image", "face_mask", "landmarks", "label")


def _check(batch: dict[str, Any], need_source: bool) -> None:
    missing = [k for k in REQUIRED + (("source", "has_source") if need_source else ()) if k not in batch]
    if missing:
        raise UserError(f"augment: batch lacks {missing}; expected the DataModule batch of docs/interfaces.md")
    img = batch["image"]
    if img.ndim != 4 or img.shape[1] != 3 or img.shape[2] != img.shape[3]:
        raise UserError(f"augment: batch['image'] must be (B, 3, S, S), got {tuple(img.shape)}")


def _to_unit(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 0..255 -> new float32 tensor in [0, 1] (one pass); float input is copied (never modified in
    place). With mask (B, 1, S, S), returns (B, 4, S, S): the image and the mask as a 4th channel, so
    that one grid_sample warps both (its cost is mostly per output pixel, not per channel)."""
    b, c, h, w = x.shape
    out = torch.empty((b, c + (mask is not None), h, w), device=x.device)
    if x.dtype == torch.uint8:
        torch.mul(x, 1 / 255, out=out[:, :c])
    else:
        out[:, :c] = x.clamp(0, 1)  # uint8 is in range by construction; float input may not be
    if mask is not None:
        out[:, c:] = mask
    return out


class _Seeded(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = int(seed)
        self._gens: dict[str, torch.Generator] = {}

    def reseed(self, seed: int) -> None:
        """Restart the random stream (e.g. seed + global rank under DDP)."""
        self.seed = int(seed)
        self._gens.clear()

    def generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._gens:
            self._gens[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._gens[key]


def _finish(
    batch: dict[str, Any],
    image: torch.Tensor,
    m: torch.Tensor,
    flip: torch.Tensor,
    partial_box: torch.Tensor,
    is_partial: torch.Tensor,
    swap: tuple[torch.Tensor, torch.Tensor] | None,
    out_size: int,
    min_box_px: float,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Warp image (B, 3 + 1 face mask, S, S)/masks/landmarks/boxes by m and assemble the output dict.

    swap: (indices (n,), blend weights (n, 1, S, S)) of the samples MFS changed, or None."""
    label = batch["label"]
    b = label.shape[0]
    out = dict(batch)
    # One sampling grid for the image, its face mask (4th channel of `image`) and the swap weights.
    grid = affine_grid(m, out_size, image.shape[-1])
    warped = warp_images(image, m, out_size, grid=grid)
    out["image"] = warped[:, :3].contiguous()
    out["face_mask"] = (warped[:, 3:4] > 0.5).to(torch.uint8)
    out["landmarks"] = flip_landmarks(warp_points(batch["landmarks"].float(), m), flip)
    whole = torch.tensor([0.0, 0.0, 1.0, 1.0], device=image.device).expand(b, 4)
    pbox = warp_boxes(partial_box, m, out_size)
    big = ((pbox[:, 2] - pbox[:, 0]) >= min_box_px) & ((pbox[:, 3] - pbox[:, 1]) >= min_box_px)
    use = is_partial & big
    has_box = label == 1
    boxes = torch.where(use[:, None], pbox / out_size, whole)
    out["boxes"] = torch.where(has_box[:, None], boxes, torch.zeros_like(boxes)).float()
    out["has_box"] = has_box
    if swap is not None:
        idx, sub = swap
        sm = torch.zeros((b, 1, out_size, out_size), device=image.device)
        if idx.numel():  # only the swapped samples have a nonzero weight to warp
            sm[idx] = warp_images(sub, m[idx], out_size, grid=grid[idx])
        out["swap_mask"] = sm
    areas = (out["boxes"][:, 2] - out["boxes"][:, 0]) * (out["boxes"][:, 3] - out["boxes"][:, 1])
    n_fake = int(has_box.sum())
    stats = {
        "box_mean_area": float(areas[has_box].mean()) if n_fake else 0.0,
        "box_fallback": float((is_partial & ~big).sum()) / max(n_fake, 1),
        "da_flip": float(flip.float().mean()) if b else 0.0,
    }
    return out, stats


class TrainTransform(_Seeded):
    """MFS (optional) then DA (optional) on a DataModule batch; see module docstring."""

    def __init__(self, mfs: MFSConfig, da: DAConfig, out_size: int = 224, seed: int = 0) -> None:
        super().__init__(seed)
        self.mfs = mfs
        self.da = da
        self.out_size = int(out_size)

    @torch.no_grad()
    def forward(self, batch: dict[str, Any], keep_dssim: bool = False) -> dict[str, Any]:
        _check(batch, need_source=self.mfs.enabled)
        buf = _to_unit(batch["image"], batch["face_mask"])  # (B, 4, S, S)
        img = buf[:, :3]  # MFS writes into this view
        b, _, s, _ = img.shape
        dev = img.device
        gen = self.generator(dev)
        label = batch["label"].to(dev)
        if self.mfs.enabled:
            res = multi_scale_facial_swap(
                img, batch["source"], batch["has_source"].to(dev), batch["face_mask"],
                label, self.mfs, gen, keep_dssim=keep_dssim, inplace=True,
            )
        else:
            kind = torch.where(label == 1, KIND_UNCHANGED, KIND_REAL).to(torch.int64)
            none = torch.zeros(b, dtype=torch.bool, device=dev)
            res = MFSOutput(img, kind, torch.zeros((b, 4), device=dev), torch.zeros(0, dtype=torch.long, device=dev),
                            torch.zeros((0, 1, s, s), device=dev), none, none, None)
        m, flip = sample_geometry(b, self.da, gen, dev, s, self.out_size, self.mfs.crop_size)
        is_partial = res.kind == KIND_PARTIAL
        out, stats = _finish(batch, buf, m, flip, res.box, is_partial, (res.swap_idx, res.swap_sub),
                             self.out_size, self.da.min_box_px)
        if self.da.enabled:
            out["image"], pstats = photometric(out["image"], self.da, gen)
            stats.update(pstats)
        out["mfs_kind"] = res.kind
        out["mfs_box_canvas"] = res.box
        if res.dssim is not None:
            out["dssim"] = res.dssim
        out["stats"] = {**_mfs_stats(res, label), **stats}
        return out


def _mfs_stats(res: MFSOutput, label: torch.Tensor) -> dict[str, float]:
    fakes = label == 1
    n = max(int(fakes.sum()), 1)
    k = res.kind

    def share(mask: torch.Tensor) -> float:
        return float((mask & fakes).sum()) / n

    glob = (k == KIND_KEEP) | (k == KIND_SOURCE_INTO_FAKE) | (k == KIND_FAKE_INTO_SOURCE)
    swapped = (k == KIND_SOURCE_INTO_FAKE) | (k == KIND_FAKE_INTO_SOURCE) | (k == KIND_PARTIAL)
    return {
        "fake_share": float(fakes.float().mean()) if label.numel() else 0.0,
        "mfs_global": share(glob),
        "mfs_source_into_fake": share(k == KIND_SOURCE_INTO_FAKE),
        "mfs_fake_into_source": share(k == KIND_FAKE_INTO_SOURCE),
        "mfs_keep": share(k == KIND_KEEP),
        "mfs_partial": share(k == KIND_PARTIAL),
        "mfs_untouched": share((k == KIND_UNCHANGED) | (k == KIND_KEEP)),
        "mfs_poisson": share(res.poisson & swapped),
        "mfs_elastic": share(res.elastic),
    }


class EvalTransform(_Seeded):
    """Deterministic centred warp canvas -> out_size at `face_scale` (1 = the canonical crop)."""

    def __init__(self, out_size: int = 224, face_scale: float = 1.0, crop_size: int = 224) -> None:
        super().__init__(0)
        if face_scale <= 0:
            raise UserError(f"face_scale={face_scale}: must be > 0 (1.0 = canonical alignment)")
        self.out_size = int(out_size)
        self.face_scale = float(face_scale)
        self.crop_size = int(crop_size)

    @torch.no_grad()
    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        _check(batch, need_source=False)
        img = _to_unit(batch["image"], batch["face_mask"])
        b, _, s, _ = img.shape
        dev = img.device
        m, flip = sample_geometry(b, None, self.generator(dev), dev, s, self.out_size, self.crop_size,
                                  self.face_scale)
        none = torch.zeros(b, dtype=torch.bool, device=dev)
        out, stats = _finish(batch, img, m, flip, torch.zeros((b, 4), device=dev), none, None, self.out_size, 0.0)
        out["stats"] = stats
        return out


def build_train_transform(mfs_cfg: Any = None, da_cfg: Any = None, out_size: int = 224, seed: int = 0) -> TrainTransform:
    """Train transform from the `mfs` and `da` config groups (mappings, DictConfigs or dataclasses)."""
    return TrainTransform(mfs_config(mfs_cfg), da_config(da_cfg), out_size, seed)


def build_eval_transform(out_size: int = 224, face_scale: float = 1.0) -> EvalTransform:
    """Eval transform: the canonical crop (face_scale 1) or a zoom of it, resized to out_size."""
    return EvalTransform(out_size, face_scale)
