"""Self-Blended Images (Shiohara & Yamasaki, CVPR 2022) as a batch stage: real frames made into
pseudo-fakes by blending each face with a transformed copy of itself, batched on the device.

Selected by the `sbi` group (`sbi=on`); iid.augment.stages runs it on the DataModule batch (uint8
canvases, docs/interfaces.md) before the train transform, and the DataModule then trains on real
frames only. Per batch, `fake_share` of the rows (half) become pseudo-fakes (label 1), so every batch
is real/pseudo-fake balanced. With `paired` (SBI's loader, default) a pseudo-fake is made from a
frame that stays in the batch as a real row, so each real sits beside its own blend; otherwise the
chosen rows are blended in place. Only rows labelled real are ever read or changed.

One pseudo-fake, the steps of SBI's official code (constants from there; `conf/sbi/on.yaml`):
1. Source-target pair from one frame: a copy gets colour jitter (RGB shift ±20 with p 0.3,
   brightness ±0.1, contrast ±0.1) then a frequency change (p 0.5 downscale by 2 or 4, nearest,
   and back up bilinearly; else sharpen with alpha in [0.2, 0.5], lightness in [0.5, 1]). The
   jittered copy is the source (inside the face); SBI jitters the target instead half the time
   (`p_target_jitter`, default 0 so that every pixel outside the blend mask stays the real frame's).
   SBI's HueSaturationValue step is left out: its limits (±0.3 on 0-255 / 0-180 uint8 scales) make
   it the identity.
2. Scale in [0.95, 1/0.95] and translation (±3% x, ±1.5% y) of the source and of its face mask.
3. Elastic deformation of the mask: displacement = alpha 50 x Gaussian-smoothed (sigma 7, scipy's
   radius 4 sigma) uniform noise in [-1, 1], per axis (albumentations' ElasticTransform).
   Steps 2 and 3 warp the mask in one resampling: M(A^-1(p + d(p))).
4. Blend mask (SBI's get_blend_mask): Gaussian blur with an odd kernel k1 in [5, 25] (OpenCV's
   sigma for it), keep only the pixels at the maximum (an erosion), Gaussian blur with k2 in [5, 25]
   and sigma in [5, 45], normalise to max 1; SBI runs this on the mask resized to (h, w), h, w in
   [192, 256] px, and back, which here is the same blur with its sizes scaled by 256/h and 256/w
   on the canvas. Then times a ratio from {0.25, 0.5, 0.75, 1, 1, 1}.
5. Pseudo-fake = target + mask x (source - target), rounded to uint8; artifact box = the bounding
   box of the mask's support (canvas pixel edges, x1/y1 exclusive).

The face-hull mask is the batch's `face_mask` (the 68-landmark hull prepare stored; SBI uses an
81-point hull reaching the forehead 3 times in 4, and our stores hold 68 landmarks). Sizes are in
pixels of a 256 canvas, scaled by S/256 for another canvas size.

How it runs (the steps above; what differs from a per-sample loader is where, and at what resolution,
they are computed):
- on CPU in chunks of 8 rows (intermediates stay in the core's cache), on worker threads as
  the train transform's chunks are (iid.augment.pipeline); on a GPU the batch is one chunk;
- the mask (steps 2-4) is computed on a grid of every MASK_STEP-th canvas pixel and resized back
  bilinearly, as SBI computes it at a random size in [192, 256] and resizes it back; the elastic
  noise is drawn on a coarser grid still (every 1, 2 or 4 px: the field is smooth on that scale) with
  its amplitude scaled so the field has the same variance and correlation length;
- the first blur's "keep the maximum" is computed as what it is, an erosion by the kernel's square;
  it and the second blur are banded matrix products on the mask's crop, one band per sample;
- the image (steps 1 and 5) is computed only on the chunk's window around the blend masks (every
  pixel outside it is the real frame's): jitter on the window's pre-image, the move and the frequency
  step's bilinear upscaling in one sampling (the downscaled copy is sampled at the moved positions).
Blurs pad with zeros at the canvas border (OpenCV reflects; the face hull stays clear of the border).

Output: the batch with `image` (contiguous uint8), `label` set to 1 on the pseudo-fakes,
`has_source` False there, `artifact_box_canvas` (B, 4) float canvas px and `has_artifact_box` (B,)
bool (the train transform warps the box with the sample like an MFS partial window), and with
`keep_mask=True` `sbi_mask` (B, 1, S, S) float, the blend weight.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from iid.augment.chunks import ChunkedStage
from iid.augment.config import SBIConfig, sbi_config
from iid.augment.sbi_jitter import jittered_at, real_at, rows_of
from iid.augment.sbi_ops import (
    erode_rect,
    field_on,
    float_window,
    gaussian_bands,
    landing,
    moved,
    separable_blur,
    span,
    suggest_layout,
    support_box,
)
from iid.errors import UserError

REQUIRED = ("image", "face_mask", "label")
MASK_STEP = 2  # the blend mask's grid: every 2nd canvas pixel (module docstring)
DRAWS = ("p_target", "p_rgb", "contrast", "brightness", "p_down", "factor", "sharp_a", "sharp_l", "scale",
         "size_h", "size_w", "k1", "k2", "sigma2", "ratio")  # fmt: skip


def build(node: Any, seed: int = 0) -> SelfBlend | None:
    """The stage iid.augment.stages builds for the `sbi` group (None when it is off)."""
    cfg = sbi_config(node)
    return SelfBlend(cfg, seed) if cfg.enabled else None


class Blend(NamedTuple):
    fake: Tensor  # (k, 3, S, S) uint8 pseudo-fakes
    box: Tensor  # (k, 4) x0y0x1y1 canvas pixel edges of weight > 0
    ok: Tensor  # (k,) bool: the weight is not all zero
    weight: Tensor | None = None  # (k, S, S) blend weight in [0, 1]            } with keep=True
    source: Tensor | None = None  # (k, 3, S, S) float 0..255: jittered, moved   } (tests, the
    mask: Tensor | None = None  # (k, S, S) face hull after the affine + elastic } figure)


class SelfBlend(ChunkedStage):
    """The SBI stage (module docstring). No parameters; its random stream restarts with `reseed`."""

    cpu_chunk = 8  # rows per CPU chunk: a chunk's window stays in a core's L2 cache

    def __init__(self, cfg: SBIConfig, seed: int = 0) -> None:
        super().__init__(seed)
        self.cfg = cfg

    # -- row choice ----------------------------------------------------------------------------
    def choose_rows(self, label: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """(rows made pseudo-fake, rows whose frame they are made from): indices into the batch."""
        dev = label.device
        real = (label == 0).nonzero()[:, 0]
        b = label.shape[0]
        want = b * self.cfg.fake_share
        n = int(want) + int(torch.rand((), generator=gen, device=dev) < want - int(want))
        n = min(n, real.numel() // 2 if self.cfg.paired else real.numel())
        order = real[torch.randperm(real.numel(), generator=gen, device=dev)]
        fake_rows = order[:n]
        return fake_rows, (order[n : 2 * n] if self.cfg.paired else fake_rows)

    # -- the steps -----------------------------------------------------------------------------
    def _draws(self, k: int, gen: torch.Generator, dev: torch.device) -> dict[str, Tensor]:
        draws = torch.rand((len(DRAWS) + 5, k), generator=gen, device=dev)  # one fixed order per batch
        u = dict(zip(DRAWS, draws))
        u["rgb"] = draws[len(DRAWS) : len(DRAWS) + 3].T  # (k, 3)
        u["translate"] = draws[len(DRAWS) + 3 :].T  # (k, 2)
        return u

    def _geometry(self, u: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Per-sample scale (n,) and translation (n, 2) (x, y) in normalised units (step 2)."""
        c = self.cfg
        lo, hi = c.scale
        scale = lo + (hi - lo) * u["scale"]
        t = (u["translate"] * 2 - 1) * torch.tensor(c.translate, device=scale.device) * 2  # fraction -> [-1, 1] units
        return scale, t

    def _elastic(self, n: int, s: int, step: int, gen: torch.Generator, dev: torch.device) -> tuple[Tensor, int]:
        """(n, 2, s / cell, s / cell) displacement (x, y) in canvas px on a grid of every `cell`-th
        pixel (a multiple of `step`), and cell (step 3). White noise on that grid, scaled by 1 / cell
        and blurred by sigma / cell: the same variance and correlation length as the canvas-resolution
        field, cell^2 times fewer draws; read bilinearly between grid points."""
        c = self.cfg
        q = s / 256
        sigma = c.elastic_sigma * q
        cells = [f for f in (4, 2, 1) if s % f == 0 and f % step == 0]
        cell = next((f for f in cells if sigma / f >= 1.5), cells[-1])
        nc = s // cell
        noise = torch.rand((n * 2, nc, nc), generator=gen, device=dev).mul_(2 / cell).sub_(1 / cell)
        sc = torch.tensor([sigma / cell], device=dev)
        field = separable_blur(noise, gaussian_bands(sc, 4 * sc, nc)[0])
        return field.mul_(c.elastic_alpha * q).view(n, 2, nc, nc), cell

    def _blend_mask(self, mask: Tensor, u: dict[str, Tensor], px: float) -> Tensor:
        """(n, h, w) binary warped mask -> blend weight in [0, 1] (step 4, ratio included); `px` is
        mask-grid pixels per pixel of a 256 canvas. Zero beyond the mask's window."""
        c = self.cfg
        n, h, w = mask.shape
        dev = mask.device

        def odd(lohi: tuple[int, ...], v: Tensor) -> Tensor:  # random.randrange(lo, hi + 1, 2)
            lo, hi = lohi
            count = (hi - lo) // 2 + 1
            return lo + 2 * (v * count).long().clamp(max=count - 1)

        def whole(lohi: tuple[float, ...], v: Tensor) -> Tensor:  # random.randint(lo, hi)
            lo, hi = lohi
            return lo + ((hi - lo + 1) * v).floor().clamp(max=hi - lo)

        # SBI works on the mask resized to (h, w): its pixel is 256 / h canvas pixels (x px on the grid)
        gy, gx = (256 * px / whole(c.mask_size, u[key]) for key in ("size_h", "size_w"))
        k1, k2 = odd(c.kernel1, u["k1"]) // 2, odd(c.kernel2, u["k2"]) // 2  # kernel radii
        eroded = erode_rect(mask, (k1 * gy).round().long(), (k1 * gx).round().long())
        empty = eroded.sum((1, 2)) == 0
        eroded = torch.where(empty.view(n, 1, 1), mask, eroded)
        sigma2 = whole(c.sigma2, u["sigma2"])
        ky = gaussian_bands(sigma2 * gy, (k2 * gy).round(), h)
        kx = gaussian_bands(sigma2 * gx, (k2 * gx).round(), w)
        m = torch.bmm(torch.bmm(ky, eroded), kx.transpose(1, 2))  # one banded product per sample and axis
        m = m / m.amax((1, 2), keepdim=True).clamp_min(1e-12)
        ratios = torch.tensor(c.blend_ratios, device=dev)
        ratio = ratios[(u["ratio"] * len(ratios)).long().clamp(max=len(ratios) - 1)]
        return (m * ratio.view(n, 1, 1)).clamp_(0, 1)

    def _reach(self, s: int) -> float:
        """Canvas px the second blur can spread a mask (its widest kernel at SBI's smallest mask size)."""
        return (max(self.cfg.kernel2) // 2) * 256 / min(self.cfg.mask_size) * s / 256

    def _blend_chunk(self, image: Tensor, face_mask: Tensor, u: dict[str, Tensor], gen: torch.Generator,
                     out: Blend) -> None:  # fmt: skip
        """Self-blend the chunk's rows into `out`'s row views (fake holds the real frames on entry)."""
        n, _, s, _ = image.shape
        dev = image.device
        step = MASK_STEP if s % MASK_STEP == 0 else 1
        r = s // step
        hull = face_mask[:, 0]
        (hy0, hy1), (hx0, hx1) = span(hull.amax(2).amax(0) > 0), span(hull.amax(1).amax(0) > 0)
        if hy1 == hy0:
            return
        # steps 2-3 on the mask grid, only on the crop where the moved hull can land: M(A^-1(p + d(p)))
        scale, t = self._geometry(u)
        field, cell = self._elastic(n, s, step, gen, dev)
        margin = float(field.abs().amax()) + self._reach(s) + 2 * step
        crop = []
        for (lo, hi), tn in (((hy0, hy1), t[:, 1]), ((hx0, hx1), t[:, 0])):
            a, b = landing(lo, hi, scale, tn, s)
            crop.append((max(int((a - margin + 0.5) / step - 0.5), 0), min(int((b + margin + 0.5) / step + 0.5) + 1, r)))
        (gy0, gy1), (gx0, gx1) = crop
        d = field_on(field, cell // step, crop[0], crop[1])  # (n, 2, h, w) canvas px
        cy0, cy1, cx0, cx1 = max(hy0 - 1, 0), min(hy1 + 1, s), max(hx0 - 1, 0), min(hx1 + 1, s)
        grid = []
        for axis, (g0, g1, c0, c1, tn) in enumerate(((gx0, gx1, cx0, cx1, t[:, 0]), (gy0, gy1, cy0, cy1, t[:, 1]))):
            p = (torch.arange(g0, g1, device=dev) + 0.5) * step - 0.5  # canvas px of the grid points
            p = p.view(1, 1, -1) if axis == 0 else p.view(1, -1, 1)
            # A^-1 in canvas px is src = P / scale + off; then normalised for the hull's crop [c0, c1)
            off = (0.5 - s / 2 - tn * s / 2) / scale + s / 2 - 0.5
            a, b = 2 / ((c1 - c0) * scale), (off - c0 + 0.5) * 2 / (c1 - c0) - 1
            grid.append(d[:, axis].add(p).mul_(a.view(n, 1, 1)).add_(b.view(n, 1, 1)))
        hull_crop = torch.empty((n, 1, cy1 - cy0, cx1 - cx0), device=dev).copy_(face_mask[:, :, cy0:cy1, cx0:cx1])
        warped = F.grid_sample(hull_crop, torch.stack(grid, -1), mode="bilinear", padding_mode="zeros", align_corners=False)
        mask = (warped[:, 0] > 0.5).float()
        m = self._blend_mask(mask, u, s / 256 / step)
        # the window around every blend mask of the chunk, one zero grid row/column beyond it
        (ya, yb), (xa, xb) = span(m.amax(2).amax(0) > 0), span(m.amax(1).amax(0) > 0)
        if yb > ya:
            h, w = m.shape[1:]
            ya, xa, yb, xb = max(ya - 1, 0), max(xa - 1, 0), min(yb + 1, h), min(xb + 1, w)
            weight = m[:, ya:yb, xa:xb]
            if step > 1:
                weight = F.interpolate(weight[:, None], scale_factor=step, mode="bilinear", align_corners=False)[:, 0]
            y0, x0 = (gy0 + ya) * step, (gx0 + xa) * step
            h, w = weight.shape[1:]
            box, ok = support_box(weight)
            out.box.copy_(box + torch.tensor([x0, y0, x0, y0], device=dev))
            out.ok.copy_(ok)
            out.fake[:, :, y0 : y0 + h, x0 : x0 + w] = self._pixels(image, u, scale, t, weight, y0, x0).round_()
            if out.weight is not None:
                out.weight[:, y0 : y0 + h, x0 : x0 + w] = weight
        if out.source is not None:  # the figure's columns, on the whole canvas
            full = torch.arange(s, device=dev)
            out.source.copy_(jittered_at(image, u, moved(full, scale, t[:, 1], s), moved(full, scale, t[:, 0], s), self.cfg))  # fmt: skip
            grid_mask = torch.zeros((n, 1, r, r), device=dev)
            grid_mask[:, 0, gy0:gy1, gx0:gx1] = mask
            out.mask.copy_(F.interpolate(grid_mask, scale_factor=step, mode="nearest")[:, 0] if step > 1 else grid_mask[:, 0])

    def _pixels(self, image: Tensor, u: dict[str, Tensor], scale: Tensor, t: Tensor, weight: Tensor,
                y0: int, x0: int) -> Tensor:  # fmt: skip
        """Step 5 on the window at (y0, x0) of weight's size: target + weight x (source - target)."""
        n, _, s, _ = image.shape
        h, w = weight.shape[1:]
        ys, xs = torch.arange(y0, y0 + h, device=image.device), torch.arange(x0, x0 + w, device=image.device)
        sy, sx = moved(ys, scale, t[:, 1], s), moved(xs, scale, t[:, 0], s)
        source = jittered_at(image, u, sy, sx, self.cfg)
        target = float_window(image, (y0, y0 + h), (x0, x0 + w))
        swap = (u["p_target"] < self.cfg.p_target_jitter).nonzero()[:, 0]
        if swap.numel():  # SBI's other half: the jittered frame is the target, the real one moves
            source[swap] = real_at(image[swap], sy[swap], sx[swap])
            k = swap.numel()
            target[swap] = jittered_at(image[swap], rows_of(u, swap), ys.float().expand(k, h), xs.float().expand(k, w), self.cfg)
        return torch.lerp(target, source, weight[:, None])

    def blend(self, image: Tensor, face_mask: Tensor, gen: torch.Generator, keep: bool = False) -> Blend:
        """Self-blend k frames: image (k, 3, S, S) uint8, face_mask (k, 1, S, S) -> Blend (with the
        weight, source and moved hull on the whole canvas when `keep`)."""
        k, _, s, _ = image.shape
        dev = image.device
        u = self._draws(k, gen, dev)
        # a reused buffer (no page faults) in the image's layout (a plain copy)
        fake = self.output("fake", (k, 3, s, s), dev, torch.uint8, suggest_layout(image)).copy_(image)
        out = Blend(fake, torch.zeros((k, 4), device=dev),
                    torch.zeros(k, dtype=torch.bool, device=dev),
                    *((torch.zeros((k, s, s), device=dev), torch.zeros((k, 3, s, s), device=dev),
                       torch.zeros((k, s, s), device=dev)) if keep else ()))  # fmt: skip
        spans = self._spans(k, dev)
        gens = self._chunk_generators(gen, len(spans), dev)

        def chunk(i: int) -> None:
            rows = slice(*spans[i])
            part = Blend(*(None if v is None else v[rows] for v in out))
            self._blend_chunk(image[rows], face_mask[rows], rows_of(u, rows), gens[i], part)

        with self._cpu_single_threaded(dev) as threads:
            self._run(chunk, len(spans), dev, threads)
        return out

    @torch.no_grad()
    def forward(self, batch: dict[str, Any], keep_mask: bool = False) -> dict[str, Any]:
        missing = [key for key in REQUIRED if key not in batch]
        if missing:
            raise UserError(f"sbi: batch lacks {missing}; expected the DataModule batch of docs/interfaces.md")
        image = batch["image"]
        b, _, s, _ = image.shape
        dev = image.device
        gen = self.generator(dev)
        label = batch["label"].to(dev)
        fake_rows, from_rows = self.choose_rows(label, gen)
        out = dict(batch)
        box = torch.zeros((b, 4), device=dev)
        has_box = torch.zeros(b, dtype=torch.bool, device=dev)
        weight = torch.zeros((b, 1, s, s), device=dev) if keep_mask else None
        if fake_rows.numel():
            res = self.blend(image[from_rows], batch["face_mask"][from_rows].to(dev), gen, keep=keep_mask)
            ok = res.ok
            rows, src = fake_rows[ok], from_rows[ok]  # an empty blend mask leaves its row real
            if self.cfg.paired:  # the pseudo-fake row takes everything of the frame it is made from
                for key, v in batch.items():
                    if key not in ("image", "label") and isinstance(v, Tensor) and v.ndim and v.shape[0] == b:
                        v = v.clone()
                        v[rows] = v[src]
                        out[key] = v
            new = image.clone(memory_format=torch.contiguous_format)
            new[rows] = res.fake[ok]
            label = label.clone()
            label[rows] = 1
            box[rows], has_box[rows] = res.box[ok], True
            if weight is not None:
                weight[rows] = res.weight[ok, None]
            out["image"] = new
            if "has_source" in out:  # a pseudo-fake has no source frame: MFS leaves it alone
                hs = out["has_source"].clone()
                hs[rows] = False
                out["has_source"] = hs
        out["label"] = label
        out["artifact_box_canvas"] = box
        out["has_artifact_box"] = has_box
        if weight is not None:
            out["sbi_mask"] = weight
        return out

