"""Multi-scale Facial Swap (paper 4.2, supplement E) on whole batches of aligned canvases.

Inputs are canvases (B, 3, S, S) in [0, 1] whose centred `crop_size` square is the canonical face
crop, so window sizes given at the 224 scale are canvas pixels. Per fake with a source frame:

- global swap (p_global): the face hull exchanged between the fake I_F and its source I_S, in one
  of the two directions or kept (probabilities p_source_into_fake / p_fake_into_source / p_keep);
  the mask may be elastically deformed; the artifact box is the whole image.
- partial swap (1 - p_global): a window (h, w) from `windows` (either orientation), placed at the
  argmax of the window sum of DSSIM(I_F, I_S) inside the face hull (eq. 2), within the crop; the
  fake's window is blended into the source; the artifact box is the window.

Blending is alpha (blurred mask) or Poisson (p_poisson). Reals and fakes without a source pass
through unchanged. No loop over samples: subsets are gathered and scattered back by index.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from iid.augment.blending import alpha_blend, poisson_blend, soft_mask
from iid.augment.config import MFSConfig
from iid.augment.elastic import elastic_deform
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


def window_choices(cfg: MFSConfig) -> list[tuple[int, int]]:
    """All (h, w) windows: each configured size, then its transpose when both orientations are on."""
    out = []
    for h, w in cfg.windows:
        out.append((h, w))
        out.append((w, h) if cfg.both_orientations else (h, w))
    return out


def choose_windows(
    fake: torch.Tensor, source: torch.Tensor, face: torch.Tensor, hw: torch.Tensor, crop_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 2 for a batch: windows (n, 4) x0y0x1y1 canvas px, their mean DSSIM (n,), DSSIM map (n, 1, S, S).

    fake, source: (n, 3, S, S); face: (n, 1, S, S) 0/1 hull; hw: (n, 2) window sizes. Positions are
    restricted to the centred crop so the window lies on the final image; DSSIM outside the face
    counts zero. One argmax per distinct window size (<= 8 groups), none per sample or position.
    """
    n, _, s, _ = fake.shape
    o = (s - crop_size) // 2
    # SSIM of the crop only, its 11x11 window reading 5 px of real canvas context around it.
    r = min(5, o)
    sl = slice(o - r, o + crop_size + r)
    ctx = dssim_map(fake[..., sl, sl], source[..., sl, sl], pad=r < 5)
    score = ctx[..., r : r + crop_size, r : r + crop_size].mean(1) if r < 5 else ctx.mean(1)
    score = score * face[:, 0, o : o + crop_size, o : o + crop_size]  # (n, crop, crop)
    dssim = torch.zeros((n, 1, s, s), device=fake.device)
    dssim[:, 0, o : o + crop_size, o : o + crop_size] = score
    boxes = torch.zeros((n, 4), device=fake.device)
    mean = torch.zeros(n, device=fake.device)
    for h, w in torch.unique(hw, dim=0).tolist():
        sel = ((hw[:, 0] == h) & (hw[:, 1] == w)).nonzero()[:, 0]
        yx, total = best_window(score[sel], h, w)
        y0 = yx[:, 0].to(boxes.dtype) + o
        x0 = yx[:, 1].to(boxes.dtype) + o
        boxes[sel] = torch.stack([x0, y0, x0 + w, y0 + h], 1)
        mean[sel] = (total / (h * w)).to(mean.dtype)
    return boxes, mean, dssim


def _rect_masks(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """0/1 masks (n, 1, S, S) of integer boxes (n, 4) x0y0x1y1 in pixel edges."""
    ar = torch.arange(size, device=boxes.device, dtype=boxes.dtype)
    inx = (ar[None] >= boxes[:, 0:1]) & (ar[None] < boxes[:, 2:3])  # (n, S)
    iny = (ar[None] >= boxes[:, 1:2]) & (ar[None] < boxes[:, 3:4])
    return (iny[:, :, None] & inx[:, None, :]).to(torch.float32)[:, None]


def _unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float [0, 1] in one pass; float input as is."""
    return x * (1 / 255) if x.dtype == torch.uint8 else x.float()


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
    """MFS on a batch. fake (B, 3, S, S) float [0, 1]; source (B, 3, S, S) float [0, 1] or uint8;
    face_mask (B, 1, S, S) 0/1 (any dtype); label (B,).

    Only the rows of fakes that take a swap are read from source/face_mask and computed on (SSIM
    and window search for the partial ones, elastic for those drawn for it, each blend for its own
    subset). inplace=True writes the result into `fake` (saves a copy when the caller owns it).
    """
    b, _, s, _ = fake.shape
    dev = fake.device
    # Every random number is drawn for all B, always in the same order: same seed -> same batch.
    u_level, u_dir, u_poisson, u_elastic, u_alpha, u_orient = torch.rand((6, b), generator=generator, device=dev)
    size_idx = torch.randint(len(cfg.windows), (b,), generator=generator, device=dev)

    fake_ok = (label == 1) & has_source.bool() & cfg.enabled
    kind = torch.where(label == 1, KIND_UNCHANGED, KIND_REAL).to(torch.int64)
    is_global = fake_ok & (u_level < cfg.p_global)
    is_partial = fake_ok & ~is_global
    k_dir = torch.full_like(kind, KIND_KEEP)
    k_dir[u_dir < cfg.p_source_into_fake + cfg.p_fake_into_source] = KIND_FAKE_INTO_SOURCE
    k_dir[u_dir < cfg.p_source_into_fake] = KIND_SOURCE_INTO_FAKE
    kind = torch.where(is_global, k_dir, kind)
    elastic = is_global & (kind != KIND_KEEP) & (u_elastic < cfg.p_elastic)

    box = torch.zeros((b, 4), device=dev)
    dssim_full = None
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
        hw = wins[2 * size_idx[p_idx] + (u_orient[p_idx] < 0.5).long()]
        pbox, pmean, pdssim = choose_windows(fake[p_idx], _unit(source[p_idx]), face_mask[p_idx].float(), hw,
                                             cfg.crop_size)
        ok = pmean >= cfg.min_dssim  # nothing dissimilar in the face: no artifact to locate
        box[p_idx] = pbox
        kind[p_idx] = torch.where(ok, KIND_PARTIAL, KIND_UNCHANGED)
        if keep_dssim:
            dssim_full = torch.zeros((b, 1, s, s), device=dev)
            dssim_full[p_idx] = pdssim
        p_idx, pbox, hw = p_idx[ok], pbox[ok], hw[ok]
        for h, w in torch.unique(hw, dim=0).tolist():
            sel = ((hw[:, 0] == h) & (hw[:, 1] == w)).nonzero()[:, 0]
            groups.append((p_idx[sel], _rect_masks(pbox[sel], s)))

    poisson = (u_poisson < cfg.p_poisson) & ((kind == KIND_SOURCE_INTO_FAKE) | (kind == KIND_FAKE_INTO_SOURCE)
                                             | (kind == KIND_PARTIAL))
    out = fake if inplace else fake.clone()  # groups are disjoint and read before they are written
    swap_idx, swap_sub = [], []
    for idx, mask in groups:
        f, src = fake[idx], _unit(source[idx])
        # Background / foreground: the source face goes into the fake only for SOURCE_INTO_FAKE.
        into_fake = (kind[idx] == KIND_SOURCE_INTO_FAKE).view(-1, 1, 1, 1)
        bg, fg = torch.where(into_fake, f, src), torch.where(into_fake, src, f)
        weight = torch.empty_like(mask)
        q = poisson[idx]
        a_sel, q_sel = (~q).nonzero()[:, 0], q.nonzero()[:, 0]
        if a_sel.numel():
            weight[a_sel] = soft_mask(mask[a_sel], cfg.blur_kernel, cfg.blur_sigma)
            bg[a_sel] = alpha_blend(bg[a_sel], fg[a_sel], weight[a_sel])
        if q_sel.numel():
            weight[q_sel] = mask[q_sel]
            bg[q_sel] = poisson_blend(bg[q_sel], fg[q_sel], mask[q_sel]).clamp(0, 1)
        out[idx] = bg
        swap_idx.append(idx)
        swap_sub.append(weight)
    sidx = torch.cat(swap_idx) if swap_idx else torch.zeros(0, dtype=torch.long, device=dev)
    ssub = torch.cat(swap_sub) if swap_sub else torch.zeros((0, 1, s, s), device=dev)
    return MFSOutput(out, kind, box, sidx, ssub, poisson, elastic, dssim_full)
