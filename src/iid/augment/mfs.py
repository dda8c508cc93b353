"""Multi-scale Facial Swap (paper 4.2, supplement E) on whole batches of aligned canvases.

Inputs are canvases (B, 3, S, S), uint8 or float in [0, 1], whose centred `crop_size` square is the
canonical face crop, so window sizes given at the 224 scale are canvas pixels. Per fake with a
source frame:

- global swap (p_global): the face hull exchanged between the fake I_F and its source I_S, in one
  of the two directions or kept (probabilities p_source_into_fake / p_fake_into_source / p_keep);
  the mask may be elastically deformed; the artifact box is the whole image.
- partial swap (1 - p_global): a window (h, w) from `windows` (either orientation), placed at the
  argmax of the window sum of DSSIM(I_F, I_S) inside the face hull (eq. 2), within the crop; the
  fake's window is blended into the source; the artifact box is the window.

Blending is alpha (blurred mask) or Poisson (p_poisson). Reals and fakes without a source pass
through unchanged. No loop over samples: subsets are gathered and scattered back by index, and
every computation runs only where it can change something: the DSSIM on the faces' bounding box,
each blend on a crop around its mask (pixels outside a mask never change).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from iid.augment.blending import alpha_blend, poisson_blend_rect, soft_mask
from iid.augment.config import MFSConfig
from iid.augment.elastic import elastic_deform
from iid.augment.filters import crop_rows, paste_rows, to_unit
from iid.augment.ssim import dssim_map
from iid.augment.windows import best_window

KIND_REAL = 0
KIND_UNCHANGED = 1  # fake without a source, MFS off, or a partial swap with no dissimilar window
KIND_KEEP = 2  # global swap branch "keep the fake as is"
KIND_SOURCE_INTO_FAKE = 3
KIND_FAKE_INTO_SOURCE = 4
KIND_PARTIAL = 5
KIND_NAMES = {
    KIND_REAL: "real",
    KIND_UNCHANGED: "unchanged",
    KIND_KEEP: "keep",
    KIND_SOURCE_INTO_FAKE: "source_into_fake",
    KIND_FAKE_INTO_SOURCE: "fake_into_source",
    KIND_PARTIAL: "partial",
}

# Crop margin around a blend mask's bounding box: a one-pixel ring of zeros is what the blends'
# filters need to see the same as on the whole canvas (an erosion by r makes every pixel within r
# of the ring zero, so the 5x5 blur of the eroded mask reads zeros beyond the crop too), and it is
# exactly Poisson's solve rectangle (cv2.seamlessClone's bounding box plus its ring).
_MARGIN = 1


@dataclass
class MFSOutput:
    image: torch.Tensor  # (B, 3, S, S) float in [0, 1]
    kind: torch.Tensor  # (B,) int64, KIND_*
    box: torch.Tensor  # (B, 4) float canvas px x0y0x1y1 (pixel edges); meaningful where kind == PARTIAL
    swap_idx: torch.Tensor  # (n,) int64: the samples MFS blended (the only ones it changed)
    swap_sub: torch.Tensor  # (n, 1, S, S) blend weight applied to them
    poisson: torch.Tensor  # (B,) bool, Poisson-blended
    elastic: torch.Tensor  # (B,) bool, elastic global mask
    dssim: torch.Tensor | None  # (B, 1, S, S) face-restricted DSSIM (partial samples only), if asked

    @property
    def swap_mask(self) -> torch.Tensor:
        """(B, 1, S, S) blend weight actually applied (0 where untouched); built on demand."""
        b, _, s, _ = self.image.shape
        full = torch.zeros((b, 1, s, s), device=self.image.device, dtype=self.swap_sub.dtype)
        full[self.swap_idx] = self.swap_sub
        return full


@dataclass
class MFSDraws:
    """The per-sample random numbers of MFS, drawn for a whole batch in one fixed order."""

    u: torch.Tensor  # (6, B): level, direction, poisson, elastic, elastic strength, orientation
    size_idx: torch.Tensor  # (B,) index into cfg.windows

    def rows(self, start: int, stop: int) -> MFSDraws:
        return MFSDraws(self.u[:, start:stop], self.size_idx[start:stop])


def draw_mfs(b: int, cfg: MFSConfig, generator: torch.Generator, device) -> MFSDraws:
    """Every random number is drawn for all B, always in the same order: same seed -> same batch."""
    u = torch.rand((6, b), generator=generator, device=device)
    size_idx = torch.randint(len(cfg.windows), (b,), generator=generator, device=device)
    return MFSDraws(u, size_idx)


def window_choices(cfg: MFSConfig) -> list[tuple[int, int]]:
    """All (h, w) windows: each configured size, then its transpose when both orientations are on."""
    out = []
    for h, w in cfg.windows:
        out.append((h, w))
        out.append((w, h) if cfg.both_orientations else (h, w))
    return out


def _span(any_: torch.Tensor) -> tuple[int, int] | None:
    """[first, last + 1) of the True entries of a 1D bool tensor, or None if there are none."""
    nz = any_.nonzero()
    if nz.numel() == 0:
        return None
    return int(nz[0, 0]), int(nz[-1, 0]) + 1


def choose_windows(
    fake: torch.Tensor, source: torch.Tensor, face: torch.Tensor, hw: torch.Tensor, crop_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 2 for a batch: windows (n, 4) x0y0x1y1 canvas px, their mean DSSIM (n,), DSSIM map (n, 1, S, S).

    fake, source: (n, 3, S, S) uint8 or float [0, 1]; face: (n, 1, S, S) 0/1 hull; hw: (n, 2) window
    sizes. Positions are restricted to the centred crop so the window lies on the final image; DSSIM
    outside the face counts zero, so it is computed only on the faces' bounding box (its 11x11
    window reading 5 px of real canvas context around it, reflect-101 beyond the canvas border: the
    values of the whole canvas's map). One argmax per distinct window size, none per sample or position.
    """
    n, _, s, _ = fake.shape
    dev = fake.device
    o = (s - crop_size) // 2
    inface = face[:, 0, o : o + crop_size, o : o + crop_size] > 0.5  # (n, crop, crop)
    score = torch.zeros((n, crop_size, crop_size), device=dev)
    ys, xs = _span(inface.any(2).any(0)), _span(inface.any(1).any(0))
    if ys is not None and xs is not None:
        (y0, y1), (x0, x1) = ys, xs
        r = 5  # 11 // 2
        cy0, cy1, cx0, cx1 = o + y0 - r, o + y1 + r, o + x0 - r, o + x1 + r
        pads = (max(0, -cx0), max(0, cx1 - s), max(0, -cy0), max(0, cy1 - s))
        rows, cols = slice(max(cy0, 0), min(cy1, s)), slice(max(cx0, 0), min(cx1, s))
        fx, sx = to_unit(fake[:, :, rows, cols]), to_unit(source[:, :, rows, cols])
        if any(pads):
            fx = torch.nn.functional.pad(fx, pads, mode="reflect")
            sx = torch.nn.functional.pad(sx, pads, mode="reflect")
        d = dssim_map(fx, sx, pad=False).mean(1)  # (n, y1 - y0, x1 - x0)
        score[:, y0:y1, x0:x1] = d * inface[:, y0:y1, x0:x1]
    dssim = torch.zeros((n, 1, s, s), device=dev)
    dssim[:, 0, o : o + crop_size, o : o + crop_size] = score
    boxes = torch.zeros((n, 4), device=dev)
    mean = torch.zeros(n, device=dev)
    for h, w in torch.unique(hw, dim=0).tolist():
        sel = ((hw[:, 0] == h) & (hw[:, 1] == w)).nonzero()[:, 0]
        yx, total = best_window(score[sel], h, w)
        wy0 = yx[:, 0].to(boxes.dtype) + o
        wx0 = yx[:, 1].to(boxes.dtype) + o
        boxes[sel] = torch.stack([wx0, wy0, wx0 + w, wy0 + h], 1)
        mean[sel] = (total / (h * w)).to(mean.dtype)
    return boxes, mean, dssim


def _rect_masks(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """0/1 masks (n, 1, S, S) of integer boxes (n, 4) x0y0x1y1 in pixel edges."""
    ar = torch.arange(size, device=boxes.device, dtype=boxes.dtype)
    inx = (ar[None] >= boxes[:, 0:1]) & (ar[None] < boxes[:, 2:3])  # (n, S)
    iny = (ar[None] >= boxes[:, 1:2]) & (ar[None] < boxes[:, 3:4])
    return (iny[:, :, None] & inx[:, None, :]).to(torch.float32)[:, None]


def _crop_boxes(mask: torch.Tensor, margin: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Per-sample top-left (n,), (n,) of one (h, w) crop size holding each mask's bounding box plus
    `margin` px (clipped to the canvas). mask: (n, 1, S, S) >= 0; empty masks get any valid crop."""
    _, _, hh, ww = mask.shape
    rows = mask[:, 0].amax(2) > 0  # (n, S): max-reductions, cheaper than any() over a bool copy
    cols = mask[:, 0].amax(1) > 0
    has = rows.any(1)
    y0 = rows.to(torch.uint8).argmax(1)
    y1 = hh - rows.flip(1).to(torch.uint8).argmax(1)
    x0 = cols.to(torch.uint8).argmax(1)
    x1 = ww - cols.flip(1).to(torch.uint8).argmax(1)
    ext_h = torch.where(has, y1 - y0, 0).max()
    ext_w = torch.where(has, x1 - x0, 0).max()
    h = min(int(ext_h) + 2 * margin, hh)
    w = min(int(ext_w) + 2 * margin, ww)
    return (y0 - margin).clamp(0, hh - h), (x0 - margin).clamp(0, ww - w), h, w


def _blend_group(
    fake: torch.Tensor, source: torch.Tensor, idx: torch.Tensor, mask: torch.Tensor, into_fake: torch.Tensor,
    poisson: bool, cfg: MFSConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Blend one group (samples idx, their 0/1 masks (n, 1, S, S) on the canvas, one blend kind)
    on crops around the masks.

    Background / foreground: the source face goes into the fake only where into_fake (n,), else the
    fake's face goes into the source. Returns the crops' top-left corners (n,), (n,), the blended
    crops (n, 3, h, w) in [0, 1] and the applied weights (n, 1, S, S) on the whole canvas.
    """
    oy, ox, h, w = _crop_boxes(mask, _MARGIN)
    f = to_unit(crop_rows(fake, oy, ox, h, w, idx))  # only the crops are read and converted
    src = to_unit(crop_rows(source, oy, ox, h, w, idx))
    m = crop_rows(mask, oy, ox, h, w)  # (n, 1, h, w)
    if bool(into_fake.all()):
        bg, fg = f, src
    elif not bool(into_fake.any()):
        bg, fg = src, f
    else:
        sel = into_fake.view(-1, 1, 1, 1)
        bg, fg = torch.where(sel, f, src), torch.where(sel, src, f)
    if poisson:
        weight = m
        out = poisson_blend_rect(bg, fg, m).clamp_(0, 1)
    else:
        weight = soft_mask(m, cfg.blur_kernel, cfg.blur_sigma)
        out = alpha_blend(bg, fg, weight)
    full = torch.zeros_like(mask)
    paste_rows(full, oy, ox, weight)
    return oy, ox, out, full


def swap_faces(
    canvas: torch.Tensor,
    fake: torch.Tensor,
    source: torch.Tensor,
    has_source: torch.Tensor,
    face_mask: torch.Tensor,
    label: torch.Tensor,
    cfg: MFSConfig,
    draws: MFSDraws,
    generator: torch.Generator,
    keep_dssim: bool = False,
) -> MFSOutput:
    """MFS of a batch written into `canvas` (B, 3, S, S) float32, the result in [0, 1].

    fake, source: (B, 3, S, S) uint8 or float [0, 1], any memory layout; face_mask (B, 1, S, S) 0/1,
    any dtype; draws from `draw_mfs`; `generator` feeds the elastic fields. `canvas` may be `fake`
    itself (every read happens before the first write). Only the rows that take a swap are read from
    source/face_mask beyond their crops: a row's base (the fake, or the source where the fake's face
    goes into it) is written once, then each blend writes only its crop.
    """
    b, _, s, _ = canvas.shape
    dev = canvas.device
    u_level, u_dir, u_poisson, u_elastic, u_alpha, u_orient = draws.u
    label = label.to(dev)
    fake_ok = (label == 1) & has_source.to(dev).bool() & cfg.enabled
    kind = torch.where(label == 1, KIND_UNCHANGED, KIND_REAL).to(torch.int64)
    is_global = fake_ok & (u_level < cfg.p_global)
    is_partial = fake_ok & ~is_global
    k_dir = torch.full_like(kind, KIND_KEEP)
    k_dir[u_dir < cfg.p_source_into_fake + cfg.p_fake_into_source] = KIND_FAKE_INTO_SOURCE
    k_dir[u_dir < cfg.p_source_into_fake] = KIND_SOURCE_INTO_FAKE
    kind = torch.where(is_global, k_dir, kind)
    elastic = is_global & (kind != KIND_KEEP) & (u_elastic < cfg.p_elastic)

    box = torch.zeros((b, 4), device=dev)
    dssim_full = torch.zeros((b, 1, s, s), device=dev) if keep_dssim else None
    # Blend groups: (sample indices, their masks (n, 1, S, S) 0/1); the global swaps, then one group
    # per partial window size (a Poisson solve wants one rectangle size per group).
    groups: list[tuple[torch.Tensor, torch.Tensor]] = []
    g_idx = (is_global & (kind != KIND_KEEP)).nonzero()[:, 0]
    if g_idx.numel():
        gmask = face_mask[g_idx].to(torch.float32)
        e_sel = elastic[g_idx].nonzero()[:, 0]
        if e_sel.numel():
            e_idx = g_idx[e_sel]
            alpha = cfg.elastic_alpha[0] + u_alpha[e_idx] * (cfg.elastic_alpha[1] - cfg.elastic_alpha[0])
            gmask[e_sel] = (elastic_deform(gmask[e_sel], alpha, cfg.elastic_sigma, generator) > 0.5).float()
        groups.append((g_idx, gmask))
    p_idx = is_partial.nonzero()[:, 0]
    if p_idx.numel():
        wins = torch.tensor(window_choices(cfg), device=dev)  # (2K, 2) (h, w)
        hw = wins[2 * draws.size_idx[p_idx].to(dev) + (u_orient[p_idx] < 0.5).long()]
        pbox, pmean, pdssim = choose_windows(fake[p_idx], source[p_idx], face_mask[p_idx], hw, cfg.crop_size)
        ok = pmean >= cfg.min_dssim  # nothing dissimilar in the face: no artifact to locate
        box[p_idx] = pbox
        kind[p_idx] = torch.where(ok, KIND_PARTIAL, KIND_UNCHANGED)
        if dssim_full is not None:
            dssim_full[p_idx] = pdssim
        p_idx, pbox, hw = p_idx[ok], pbox[ok], hw[ok]
        for h, w in torch.unique(hw, dim=0).tolist():
            sel = ((hw[:, 0] == h) & (hw[:, 1] == w)).nonzero()[:, 0]
            groups.append((p_idx[sel], _rect_masks(pbox[sel], s)))

    poisson = (u_poisson < cfg.p_poisson) & ((kind == KIND_SOURCE_INTO_FAKE) | (kind == KIND_FAKE_INTO_SOURCE)
                                             | (kind == KIND_PARTIAL))
    # Each group splits by blend kind: alpha and Poisson rows get their own crops (a Poisson
    # rectangle is the bounding box of its own rows' masks).
    split: list[tuple[torch.Tensor, torch.Tensor, bool]] = []
    for idx, mask in groups:
        q = poisson[idx]
        for want in (False, True):
            sel = (q == want).nonzero()[:, 0]
            if sel.numel():
                split.append((idx[sel], mask[sel], want))
    # Every read of fake/source first (canvas may alias fake), then the writes.
    blended = [_blend_group(fake, source, idx, mask, kind[idx] == KIND_SOURCE_INTO_FAKE, q, cfg)
               for idx, mask, q in split]
    from_source = (kind == KIND_FAKE_INTO_SOURCE) | (kind == KIND_PARTIAL)
    src_idx = from_source.nonzero()[:, 0]
    src_rows = source.index_select(0, src_idx) if src_idx.numel() else None
    if canvas.data_ptr() != fake.data_ptr():
        canvas.copy_(fake)
        if fake.dtype == torch.uint8:
            canvas.mul_(1 / 255)
    if src_rows is not None:
        canvas.index_copy_(0, src_idx, to_unit(src_rows))
    for (idx, _, _), (oy, ox, crop, _) in zip(split, blended):
        paste_rows(canvas, oy, ox, crop, idx)
    sidx = torch.cat([idx for idx, _, _ in split]) if split else torch.zeros(0, dtype=torch.long, device=dev)
    ssub = torch.cat([full for *_, full in blended]) if split else torch.zeros((0, 1, s, s), device=dev)
    return MFSOutput(canvas, kind, box, sidx, ssub, poisson, elastic, dssim_full)


def multi_scale_facial_swap(
    fake: torch.Tensor,
    source: torch.Tensor,
    has_source: torch.Tensor,
    face_mask: torch.Tensor,
    label: torch.Tensor,
    cfg: MFSConfig,
    generator: torch.Generator,
    keep_dssim: bool = False,
    inplace: bool = False,
) -> MFSOutput:
    """MFS on a batch. fake (B, 3, S, S) float in [0, 1] or uint8; source likewise; face_mask
    (B, 1, S, S) 0/1 (any dtype); label (B,). Returns the result as a new float tensor, or in `fake`
    itself with inplace=True (a float fake the caller owns)."""
    b, _, s, _ = fake.shape
    draws = draw_mfs(b, cfg, generator, fake.device)
    if inplace and fake.dtype == torch.float32:
        canvas = fake
    else:
        canvas = torch.empty((b, 3, s, s), device=fake.device)
    return swap_faces(canvas, fake, source, has_source, face_mask, label, cfg, draws, generator, keep_dssim)
