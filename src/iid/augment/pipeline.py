"""Train / eval transforms: batch dict (uint8 canvases from the DataModule) -> model-ready batch dict.

See docs/interfaces.md ("Device-side transforms"). The train transform runs MFS on the canvases,
then DA (one affine warp canvas -> out_size, photometric ops); the eval transform is the fixed
centred warp at a given face scale. Both are nn.Modules with no parameters, run after the batch
reaches its device (LightningModule.on_after_batch_transfer).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from iid.augment.chunks import ChunkedStage
from iid.augment.config import DAConfig, MFSConfig, da_config, mfs_config
from iid.augment.da import (
    PhotoDraws,
    affine_grid,
    apply_photometric,
    draw_photometric,
    flip_landmarks,
    photo_shares,
    sample_geometry,
    warp_boxes,
    warp_points,
)
from iid.augment.mfs import (
    KIND_FAKE_INTO_SOURCE,
    KIND_KEEP,
    KIND_PARTIAL,
    KIND_REAL,
    KIND_SOURCE_INTO_FAKE,
    KIND_UNCHANGED,
    MFSDraws,
    MFSOutput,
    draw_mfs,
    swap_faces,
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


def _to_unit(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [0, 1] into `out` in one pass; float input is copied and clamped."""
    if x.dtype == torch.uint8:
        return torch.mul(x, 1 / 255, out=out)
    return out.copy_(x).clamp_(0, 1)


class _Transform(ChunkedStage):
    """The chunked runner plus the DA warp the train and eval transforms share."""

    def _warp_chunk(
        self, canvas: torch.Tensor, face_mask: torch.Tensor, m: torch.Tensor, out_size: int,
        face_out: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Warp a chunk's canvases (n, 3, S, S) [0, 1] and face masks by m (n, 2, 3) to out_size:
        returns the images (n, 3, out, out) and the sampling grid; the mask lands in face_out (uint8)."""
        n, _, s, _ = canvas.shape
        grid = affine_grid(m, out_size, s, self.workspace("grid", (n, out_size, out_size, 2), canvas.device))
        image = F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        face = self.workspace("face", (n, 1, s, s), canvas.device).copy_(face_mask)
        warped = F.grid_sample(face, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        face_out.copy_(warped > 0.5)
        return image, grid


def _assemble(
    batch: dict[str, Any],
    image: torch.Tensor,
    face: torch.Tensor,
    m: torch.Tensor,
    flip: torch.Tensor,
    partial_box: torch.Tensor,
    is_partial: torch.Tensor,
    out_size: int,
    min_box_px: float,
) -> tuple[dict[str, Any], dict[str, float]]:
    """The output dict: warped image and face mask, landmarks and boxes moved by m, flip-reindexed."""
    label = batch["label"].to(image.device)
    b = label.shape[0]
    out = dict(batch)
    out["image"] = image
    out["face_mask"] = face
    out["landmarks"] = flip_landmarks(warp_points(batch["landmarks"].to(image.device).float(), m), flip)
    whole = torch.tensor([0.0, 0.0, 1.0, 1.0], device=image.device).expand(b, 4)
    pbox = warp_boxes(partial_box, m, out_size)
    big = ((pbox[:, 2] - pbox[:, 0]) >= min_box_px) & ((pbox[:, 3] - pbox[:, 1]) >= min_box_px)
    use = is_partial & big
    has_box = label == 1
    boxes = torch.where(use[:, None], pbox / out_size, whole)
    out["boxes"] = torch.where(has_box[:, None], boxes, torch.zeros_like(boxes)).float()
    out["has_box"] = has_box
    areas = (out["boxes"][:, 2] - out["boxes"][:, 0]) * (out["boxes"][:, 3] - out["boxes"][:, 1])
    n_fake = int(has_box.sum())
    stats = {
        "box_mean_area": float(areas[has_box].mean()) if n_fake else 0.0,
        "box_fallback": float((is_partial & ~big).sum()) / max(n_fake, 1),
        "da_flip": float(flip.float().mean()) if b else 0.0,
    }
    return out, stats


class TrainTransform(_Transform):
    """MFS (optional) then DA (optional) on a DataModule batch; see module docstring."""

    def __init__(self, mfs: MFSConfig, da: DAConfig, out_size: int = 224, seed: int = 0) -> None:
        super().__init__(seed)
        self.mfs = mfs
        self.da = da
        self.out_size = int(out_size)

    @torch.no_grad()
    def forward(self, batch: dict[str, Any], keep_dssim: bool = False) -> dict[str, Any]:
        _check(batch, need_source=self.mfs.enabled)
        with self._cpu_single_threaded(batch["image"].device) as threads:
            return self._forward(batch, keep_dssim, threads)

    def _forward(self, batch: dict[str, Any], keep_dssim: bool, threads: int) -> dict[str, Any]:
        src_img = batch["image"]
        dev = src_img.device
        b, _, s, _ = src_img.shape
        o = self.out_size
        gen = self.generator(dev)
        label = batch["label"].to(dev)
        # All per-sample draws first, for the whole batch, in one fixed order.
        draws: MFSDraws | None = draw_mfs(b, self.mfs, gen, dev) if self.mfs.enabled else None
        m, flip = sample_geometry(b, self.da, gen, dev, s, o, self.mfs.crop_size)
        photo: PhotoDraws | None = draw_photometric(b, gen, dev) if self.da.enabled else None
        spans = self._spans(b, dev)
        gens = self._chunk_generators(gen, len(spans), dev)

        image = self.output("image", (b, 3, o, o), dev)
        face = self.output("face_mask", (b, 1, o, o), dev, torch.uint8)
        swap = self.output("swap_mask", (b, 1, o, o), dev).zero_()
        kind = torch.where(label == 1, KIND_UNCHANGED, KIND_REAL).to(torch.int64)
        box = torch.zeros((b, 4), device=dev)
        poisson = torch.zeros(b, dtype=torch.bool, device=dev)
        elastic = torch.zeros(b, dtype=torch.bool, device=dev)
        dssim = torch.zeros((b, 1, s, s), device=dev) if keep_dssim and self.mfs.enabled else None

        def chunk(i: int) -> None:
            c0, c1 = spans[i]
            sl = slice(c0, c1)
            canvas = self.workspace("canvas", (c1 - c0, 3, s, s), dev)
            if draws is not None:
                res = swap_faces(canvas, src_img[sl], batch["source"][sl], batch["has_source"][sl],
                                 batch["face_mask"][sl], label[sl], self.mfs, draws.rows(c0, c1), gens[i],
                                 keep_dssim=dssim is not None)
                kind[sl], box[sl], poisson[sl], elastic[sl] = res.kind, res.box, res.poisson, res.elastic
                if dssim is not None:
                    dssim[sl] = res.dssim
            else:
                res = None
                _to_unit(src_img[sl], canvas)
            x, grid = self._warp_chunk(canvas, batch["face_mask"][sl], m[sl], o, face[sl])
            if res is not None and res.swap_idx.numel():  # only the swapped samples have a nonzero weight
                swap[sl][res.swap_idx] = F.grid_sample(res.swap_sub, grid[res.swap_idx], mode="bilinear",
                                                       padding_mode="zeros", align_corners=True)
            if photo is not None:
                apply_photometric(x, self.da, photo.rows(c0, c1), gens[i])
            image[sl] = x

        self._run(chunk, len(spans), dev, threads)
        is_partial = kind == KIND_PARTIAL
        art_box, has_art = box, is_partial
        if "has_artifact_box" in batch:  # a stage before this transform (SBI) made these rows' artifacts
            given = batch["has_artifact_box"].to(dev) & ~is_partial
            art_box = torch.where(given[:, None], batch["artifact_box_canvas"].to(dev).float(), box)
            has_art = is_partial | given
        out, stats = _assemble(batch, image, face, m, flip, art_box, has_art, o, self.da.min_box_px)
        out["swap_mask"] = swap
        if photo is not None:
            stats.update(photo_shares(photo, self.da))
        res = MFSOutput(image, kind, box, torch.zeros(0, dtype=torch.long, device=dev),
                        torch.zeros((0, 1, s, s), device=dev), poisson, elastic, dssim)
        out["mfs_kind"] = kind
        out["mfs_box_canvas"] = box
        if dssim is not None:
            out["dssim"] = dssim
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


class EvalTransform(_Transform):
    """Deterministic centred warp canvas -> out_size at `face_scale` (1 = the canonical crop)."""

    def __init__(self, out_size: int = 224, face_scale: float = 1.0, crop_size: int = 224) -> None:
        super().__init__(0)
        if face_scale <= 0:
            raise UserError(f"eval.face_scale={face_scale}: must be > 0 (1.0 = canonical alignment)")
        self.out_size = int(out_size)
        self.face_scale = float(face_scale)
        self.crop_size = int(crop_size)

    @torch.no_grad()
    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        _check(batch, need_source=False)
        with self._cpu_single_threaded(batch["image"].device) as threads:
            return self._forward(batch, threads)

    def _forward(self, batch: dict[str, Any], threads: int) -> dict[str, Any]:
        src_img = batch["image"]
        dev = src_img.device
        b, _, s, _ = src_img.shape
        o = self.out_size
        m, flip = sample_geometry(b, None, self.generator(dev), dev, s, o, self.crop_size, self.face_scale)
        spans = self._spans(b, dev)
        image = self.output("image", (b, 3, o, o), dev)
        face = self.output("face_mask", (b, 1, o, o), dev, torch.uint8)

        def chunk(i: int) -> None:
            sl = slice(*spans[i])
            canvas = _to_unit(src_img[sl], self.workspace("canvas", (sl.stop - sl.start, 3, s, s), dev))
            image[sl] = self._warp_chunk(canvas, batch["face_mask"][sl], m[sl], o, face[sl])[0]

        self._run(chunk, len(spans), dev, threads)
        none = torch.zeros(b, dtype=torch.bool, device=dev)
        out, stats = _assemble(batch, image, face, m, flip, torch.zeros((b, 4), device=dev), none, o, 0.0)
        out["stats"] = stats
        return out


def build_train_transform(mfs_cfg: Any = None, da_cfg: Any = None, out_size: int = 224, seed: int = 0) -> TrainTransform:
    """Train transform from the `mfs` and `da` config groups (mappings, DictConfigs or dataclasses)."""
    return TrainTransform(mfs_config(mfs_cfg), da_config(da_cfg), out_size, seed)


def build_eval_transform(out_size: int = 224, face_scale: float = 1.0) -> EvalTransform:
    """Eval transform: the canonical crop (face_scale 1) or a zoom of it, resized to out_size."""
    return EvalTransform(out_size, face_scale)
