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


def _to_unit(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 0..255 -> float32 in [0, 1], into `out` (a reused workspace) or a new tensor; float input
    is copied and clamped (never modified in place)."""
    if out is None:
        out = torch.empty(x.shape, device=x.device)
    out.copy_(x)
    return out.mul_(1 / 255) if x.dtype == torch.uint8 else out.clamp_(0, 1)


class _Seeded(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = int(seed)
        self._gens: dict[str, torch.Generator] = {}
        self._ws: dict[tuple[str, str], torch.Tensor] = {}

    def reseed(self, seed: int) -> None:
        """Restart the random stream (e.g. seed + global rank under DDP)."""
        self.seed = int(seed)
        self._gens.clear()

    def workspace(self, name: str, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """A float32 scratch tensor kept between calls. On CPU every fresh tensor of tens of MB is
        mmapped and page-faulted in again (~50 ms per 77 MB here), more than most ops on it cost."""
        key = (name, str(device))
        ws = self._ws.get(key)
        if ws is None or tuple(ws.shape) != tuple(shape):
            ws = self._ws[key] = torch.empty(shape, device=device)
        return ws

    def generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._gens:
            self._gens[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._gens[key]


def _finish(
    batch: dict[str, Any],
    image: torch.Tensor,
    face_mask: torch.Tensor,
    m: torch.Tensor,
    flip: torch.Tensor,
    partial_box: torch.Tensor,
    is_partial: torch.Tensor,
    swap: tuple[torch.Tensor, torch.Tensor] | None,
    out_size: int,
    min_box_px: float,
    grid_ws: torch.Tensor | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Warp image (B, 3, S, S), face_mask (B, 1, S, S) float, landmarks, boxes by m; assemble the output dict.

    swap: (indices (n,), blend weights (n, 1, S, S)) of the samples MFS changed, or None."""
    label = batch["label"]
    b = label.shape[0]
    out = dict(batch)
    # One sampling grid for the image, its face mask and the swap weights (they move together).
    grid = affine_grid(m, out_size, image.shape[-1], grid_ws)
    out["image"] = warp_images(image, m, out_size, grid=grid)
    out["face_mask"] = (warp_images(face_mask, m, out_size, grid=grid) > 0.5).to(torch.uint8)
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
        dev = batch["image"].device
        img = _to_unit(batch["image"], self.workspace("image", batch["image"].shape, dev))  # MFS writes in place
        face = self.workspace("face", batch["face_mask"].shape, dev).copy_(batch["face_mask"])
        b, _, s, _ = img.shape
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
        grid_ws = self.workspace("grid", (b, self.out_size, self.out_size, 2), dev)
        out, stats = _finish(batch, img, face, m, flip, res.box, is_partial, (res.swap_idx, res.swap_sub),
                             self.out_size, self.da.min_box_px, grid_ws)
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
        dev = batch["image"].device
        img = _to_unit(batch["image"], self.workspace("image", batch["image"].shape, dev))
        face = self.workspace("face", batch["face_mask"].shape, dev).copy_(batch["face_mask"])
        b, _, s, _ = img.shape
        m, flip = sample_geometry(b, None, self.generator(dev), dev, s, self.out_size, self.crop_size,
                                  self.face_scale)
        none = torch.zeros(b, dtype=torch.bool, device=dev)
        out, stats = _finish(batch, img, face, m, flip, torch.zeros((b, 4), device=dev), none, None, self.out_size, 0.0)
        out["stats"] = stats
        return out


def build_train_transform(mfs_cfg: Any = None, da_cfg: Any = None, out_size: int = 224, seed: int = 0) -> TrainTransform:
    """Train transform from the `mfs` and `da` config groups (mappings, DictConfigs or dataclasses)."""
    return TrainTransform(mfs_config(mfs_cfg), da_config(da_cfg), out_size, seed)


def build_eval_transform(out_size: int = 224, face_scale: float = 1.0) -> EvalTransform:
    """Eval transform: the canonical crop (face_scale 1) or a zoom of it, resized to out_size."""
    return EvalTransform(out_size, face_scale)
