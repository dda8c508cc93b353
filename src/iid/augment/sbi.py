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
pixels of a 256 canvas, scaled by S/256 for another canvas size. Gaussian blurs run as banded
matrix products (one per sample and axis: batched bmm), with zero padding at the canvas border
(OpenCV reflects; the face hull stays clear of the border).

Output: the batch with `image` (contiguous uint8), `label` set to 1 on the pseudo-fakes,
`has_source` False there, `artifact_box_canvas` (B, 4) float canvas px and `has_artifact_box` (B,)
bool (the train transform warps the box with the sample like an MFS partial window), and with
`keep_mask=True` `sbi_mask` (B, 1, S, S) float, the blend weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from iid.errors import UserError
from iid.settings import bounds, settings

REQUIRED = ("image", "face_mask", "label")


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


def build(node: Any, seed: int = 0) -> SelfBlend | None:
    """The stage iid.augment.stages builds for the `sbi` group (None when it is off)."""
    cfg = sbi_config(node)
    return SelfBlend(cfg, seed) if cfg.enabled else None


class Blend(NamedTuple):
    fake: Tensor  # (k, 3, S, S) uint8 pseudo-fakes
    weight: Tensor  # (k, S, S) blend weight in [0, 1]
    box: Tensor  # (k, 4) x0y0x1y1 canvas pixel edges of weight > 0
    ok: Tensor  # (k,) bool: the weight is not all zero
    source: Tensor  # (k, 3, S, S) float 0..255: the jittered, moved source
    mask: Tensor  # (k, S, S) the face hull after the affine and elastic warps


# -- batched image ops ------------------------------------------------------------------------------
def opencv_sigma(ksize: Tensor) -> Tensor:
    """The sigma OpenCV derives from an odd kernel size when given sigma 0."""
    return 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8


def gaussian_bands(sigma: Tensor, radius: Tensor, n: int) -> Tensor:
    """(k, n, n) banded matrices K with (K x)[i] = sum_j g(i - j) x[j]: a Gaussian of `sigma` truncated
    at `radius` (per sample), normalised to sum 1, zero outside the signal."""
    taps = torch.arange(-n + 1, n, device=sigma.device, dtype=torch.float32)  # offsets i - j
    g = torch.exp(-(taps**2) / (2 * sigma.float().view(-1, 1) ** 2)) * (taps.abs() <= radius.float().floor().view(-1, 1))
    g = g / g.sum(1, keepdim=True)  # (k, 2n - 1): the 1-D kernels, then laid out as bands
    idx = torch.arange(n, device=sigma.device)
    return g[:, idx[:, None] - idx[None, :] + n - 1]


def separable_blur(x: Tensor, ky: Tensor, kx: Tensor) -> Tensor:
    """x (k, H, W) blurred by per-sample banded matrices ky (k, H, H) and kx (k, W, W) (or shared (H, H))."""
    if kx.ndim == 2:
        out = (x.reshape(-1, x.shape[-1]) @ kx.T).view_as(x)
        return ky @ out
    return torch.bmm(ky, torch.bmm(x, kx.transpose(1, 2)))


class SelfBlend(nn.Module):
    """The SBI stage (module docstring). No parameters; its random stream restarts with `reseed`."""

    def __init__(self, cfg: SBIConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.seed = int(seed)
        self._gens: dict[str, torch.Generator] = {}

    def reseed(self, seed: int) -> None:
        self.seed = int(seed)
        self._gens.clear()

    def generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._gens:
            self._gens[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._gens[key]

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
    def _jitter(self, x: Tensor, u: dict[str, Tensor]) -> Tensor:
        """Colour then frequency jitter of x (k, 3, S, S) float on 0..255 (step 1)."""
        c = self.cfg
        k, _, s, _ = x.shape
        shift = (u["rgb"] * 2 - 1) * c.rgb_shift * (u["p_rgb"] < c.p_rgb_shift)[:, None]  # (k, 3)
        x = (x + shift.view(k, 3, 1, 1)).clamp_(0, 255)
        alpha = 1 + (u["contrast"] * 2 - 1) * c.contrast
        beta = (u["brightness"] * 2 - 1) * c.brightness * 255
        x = x.mul_(alpha.view(k, 1, 1, 1)).add_(beta.view(k, 1, 1, 1)).clamp_(0, 255)
        down = u["p_down"] < c.p_downscale
        factor = torch.tensor(c.downscale, device=x.device)[(u["factor"] * len(c.downscale)).long().clamp(max=len(c.downscale) - 1)]
        for f in c.downscale:  # one group per factor, vectorised inside it
            idx = (down & (factor == f)).nonzero()[:, 0]
            if idx.numel():
                small = F.interpolate(x[idx], size=(s // f, s // f), mode="nearest")
                x[idx] = F.interpolate(small, size=(s, s), mode="bilinear", align_corners=False)
        idx = (~down).nonzero()[:, 0]
        if idx.numel():
            # (1-a) I + a [[-1,-1,-1],[-1,8+L,-1],[-1,-1,-1]] = (1 + a(8+L)) I - 9a box3 (albumentations Sharpen)
            lo, hi = c.sharpen_alpha
            a = (lo + (hi - lo) * u["sharp_a"][idx]).view(-1, 1, 1, 1)
            lo, hi = c.sharpen_lightness
            light = (lo + (hi - lo) * u["sharp_l"][idx]).view(-1, 1, 1, 1)
            xs = x[idx]
            p = F.pad(xs, (1, 1, 1, 1), mode="reflect")
            p = p[..., :-2] + p[..., 1:-1] + p[..., 2:]
            box9 = p[:, :, :-2] + p[:, :, 1:-1] + p[:, :, 2:]  # 3x3 sums by shifted adds
            x[idx] = ((1 + a * (8 + light)) * xs - a * box9).clamp_(0, 255)
        return x

    def _geometry(self, u: dict[str, Tensor], s: int) -> tuple[Tensor, Tensor]:
        """Per-sample scale (k,) and translation (k, 2) in normalised units (step 2)."""
        c = self.cfg
        lo, hi = c.scale
        scale = lo + (hi - lo) * u["scale"]
        t = (u["translate"] * 2 - 1) * torch.tensor(c.translate, device=scale.device) * 2  # fraction -> [-1, 1] units
        return scale, t

    def _elastic(self, k: int, s: int, q: float, gen: torch.Generator, dev: torch.device) -> Tensor:
        """(k, S, S, 2) displacement in normalised units (step 3)."""
        c = self.cfg
        noise = torch.rand((k * 2, s, s), generator=gen, device=dev).mul_(2).sub_(1)
        sigma = torch.tensor([c.elastic_sigma * q], device=dev)
        band = gaussian_bands(sigma, 4 * sigma, s)[0]
        field = separable_blur(noise, band, band).mul_(c.elastic_alpha * q * 2 / s)  # px -> normalised
        return field.view(k, 2, s, s).permute(0, 2, 3, 1)

    def _blend_mask(self, mask: Tensor, u: dict[str, Tensor], q: float) -> Tensor:
        """(k, S, S) binary warped mask -> blend weight in [0, 1] (step 4, ratio included)."""
        c = self.cfg
        k, s, _ = mask.shape
        dev = mask.device

        def odd(lohi: tuple[int, ...], v: Tensor) -> Tensor:  # random.randrange(lo, hi + 1, 2)
            lo, hi = lohi
            n = (hi - lo) // 2 + 1
            return lo + 2 * (v * n).long().clamp(max=n - 1).float()

        lo, hi = c.mask_size
        size_h = (lo + ((hi - lo + 1) * u["size_h"]).floor().clamp(max=hi - lo)) * q
        size_w = (lo + ((hi - lo + 1) * u["size_w"]).floor().clamp(max=hi - lo)) * q
        fy, fx = s / size_h, s / size_w  # canvas px per mask-space px
        k1, k2 = odd(c.kernel1, u["k1"]) * q, odd(c.kernel2, u["k2"]) * q
        lo, hi = c.sigma2
        sigma2 = (lo + ((hi - lo + 1) * u["sigma2"]).floor().clamp(max=hi - lo)) * q
        s1 = opencv_sigma(k1)
        m = separable_blur(mask, gaussian_bands(s1 * fy, (k1 // 2) * fy, s), gaussian_bands(s1 * fx, (k1 // 2) * fx, s))
        top = m.amax((1, 2), keepdim=True).clamp_min(1e-12)
        eroded = (m >= top * (1 - 1e-5)).float()  # SBI: m / max, then m[m < 1] = 0
        empty = eroded.sum((1, 2)) == 0
        eroded = torch.where(empty.view(k, 1, 1), mask, eroded)
        m = separable_blur(eroded, gaussian_bands(sigma2 * fy, (k2 // 2) * fy, s),
                           gaussian_bands(sigma2 * fx, (k2 // 2) * fx, s))
        m = m / m.amax((1, 2), keepdim=True).clamp_min(1e-12)
        ratios = torch.tensor(c.blend_ratios, device=dev)
        ratio = ratios[(u["ratio"] * len(ratios)).long().clamp(max=len(ratios) - 1)]
        return (m * ratio.view(k, 1, 1)).clamp_(0, 1)

    @staticmethod
    def support_box(m: Tensor) -> tuple[Tensor, Tensor]:
        """Bounding boxes (k, 4) x0y0x1y1 (pixel edges) of m > 0 (k, S, S), and which are non-empty."""
        s = m.shape[-1]
        on = m > 0
        cols, rows = on.any(1), on.any(2)  # (k, S)
        ar = torch.arange(s, device=m.device)
        x0 = torch.where(cols, ar, s).amin(1)
        x1 = torch.where(cols, ar + 1, 0).amax(1)
        y0 = torch.where(rows, ar, s).amin(1)
        y1 = torch.where(rows, ar + 1, 0).amax(1)
        return torch.stack([x0, y0, x1, y1], 1).float(), cols.any(1)

    def blend(self, image: Tensor, face_mask: Tensor, gen: torch.Generator) -> Blend:
        """Self-blend k frames: image (k, 3, S, S) uint8, face_mask (k, 1, S, S) -> Blend."""
        c = self.cfg
        k, _, s, _ = image.shape
        dev = image.device
        q = s / 256
        names = ("p_target", "p_rgb", "contrast", "brightness", "p_down", "factor", "sharp_a", "sharp_l", "scale",
                 "size_h", "size_w", "k1", "k2", "sigma2", "ratio")  # fmt: skip
        draws = torch.rand((len(names) + 5, k), generator=gen, device=dev)  # one fixed order per batch
        u = dict(zip(names, draws))
        u["rgb"] = draws[len(names) : len(names) + 3].T  # (k, 3)
        u["translate"] = draws[len(names) + 3 :].T  # (k, 2)
        field = self._elastic(k, s, q, gen, dev)

        real = image.float()
        jittered = self._jitter(real.clone(), u)
        swap = u["p_target"] < c.p_target_jitter
        source, target = jittered, real
        if swap.any():
            sw = swap.view(k, 1, 1, 1)
            source, target = torch.where(sw, real, jittered), torch.where(sw, jittered, real)

        scale, t = self._geometry(u, s)
        base = F.affine_grid(torch.eye(2, 3, device=dev).expand(1, 2, 3), [1, 1, s, s], align_corners=False)
        grid_src = (base - t.view(k, 1, 1, 2)) / scale.view(k, 1, 1, 1)  # source moved by A
        source = F.grid_sample(source, grid_src, mode="bilinear", padding_mode="zeros", align_corners=False)
        grid_mask = (base + field - t.view(k, 1, 1, 2)) / scale.view(k, 1, 1, 1)  # M(A^-1(p + d(p)))
        mask = F.grid_sample(face_mask.float(), grid_mask, mode="bilinear", padding_mode="zeros", align_corners=False)
        mask = (mask[:, 0] > 0.5).float()

        m = self._blend_mask(mask, u, q)
        fake = target + m[:, None] * (source - target)
        box, ok = self.support_box(m)
        return Blend(fake.round_().clamp_(0, 255).to(torch.uint8), m, box, ok, source, mask)

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
            fake, m, rbox, ok = self.blend(image[from_rows], batch["face_mask"][from_rows].to(dev), gen)[:4]
            rows, src = fake_rows[ok], from_rows[ok]  # an empty blend mask leaves its row real
            if self.cfg.paired:  # the pseudo-fake row takes everything of the frame it is made from
                for key, v in batch.items():
                    if key not in ("image", "label") and isinstance(v, Tensor) and v.ndim and v.shape[0] == b:
                        v = v.clone()
                        v[rows] = v[src]
                        out[key] = v
            new = image.clone(memory_format=torch.contiguous_format)
            new[rows] = fake[ok]
            label = label.clone()
            label[rows] = 1
            box[rows], has_box[rows] = rbox[ok], True
            if weight is not None:
                weight[rows] = m[ok, None]
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


# -- figure: python -m iid.augment.sbi store=<store_root>/<dataset>/<split> out=fig.png [n=6] [seed=0] ---
COLUMNS = ("real frame", "source (jittered, moved)", "hull warped + blend mask", "pseudo-fake + box",
           "after DA + box")  # fmt: skip


def load_real_batch(store: Any, n: int, seed: int) -> dict[str, Tensor]:
    """n real rows of a frame store at random (seeded), as a DataModule batch (docs/interfaces.md)."""
    import numpy as np

    rows = np.flatnonzero(store.label == 0)
    if len(rows) == 0:
        raise UserError(f"{store.path}: no real frames to self-blend")
    rows = np.sort(np.random.default_rng(seed).choice(rows, size=min(n, len(rows)), replace=False))
    nb = store.read_batch(rows)
    return {
        "image": torch.from_numpy(np.ascontiguousarray(nb["image"].transpose(0, 3, 1, 2))),
        "source": torch.from_numpy(np.ascontiguousarray(nb["source"].transpose(0, 3, 1, 2))),
        "face_mask": torch.from_numpy(np.ascontiguousarray(nb["face_mask"]))[:, None],
        "landmarks": torch.from_numpy(np.asarray(nb["landmarks"], dtype=np.float32)),
        "label": torch.from_numpy(nb["label"]),
        "has_source": torch.from_numpy(nb["has_source"]),
    }


def render(batch: dict[str, Tensor], out: Path, seed: int = 0, node: Any = None) -> Path:
    """Self-blend every row of a batch of real frames (SBI's defaults, or the `sbi` node given) and draw
    one row per frame: the frame, the moved source, the warped hull (contour) over the blend mask, the
    pseudo-fake with its artifact box, and the train transform's output (DA on) with the warped box."""
    from iid.figures import draw_box, pyplot, save_grid

    plt = pyplot()

    from iid.augment.pipeline import build_train_transform
    from iid.settings import plain

    cfg = sbi_config({**plain(node), "fake_share": 1.0, "paired": False, "enabled": True})
    stage = SelfBlend(cfg, seed)
    b, _, s, _ = batch["image"].shape
    res = stage.blend(batch["image"], batch["face_mask"], stage.generator(batch["image"].device))
    fake = dict(batch, image=res.fake, label=torch.ones(b, dtype=torch.long), has_source=torch.zeros(b, dtype=torch.bool),
                artifact_box_canvas=res.box, has_artifact_box=res.ok)  # fmt: skip
    aug = build_train_transform({"enabled": False}, {}, seed=seed)(fake)
    o = (s - 224) // 2
    crop = (slice(o, o + 224), slice(o, o + 224))

    fig, axes = plt.subplots(b, len(COLUMNS), figsize=(2.0 * len(COLUMNS), 2.0 * b), squeeze=False)
    for i in range(b):
        ax = axes[i]
        ax[0].imshow(batch["image"][i].permute(1, 2, 0).numpy()[crop])
        ax[1].imshow((res.source[i].permute(1, 2, 0).numpy() / 255).clip(0, 1)[crop])
        ax[2].imshow(res.weight[i].numpy()[crop], cmap="gray", vmin=0, vmax=1)
        ax[2].contour(res.mask[i].numpy()[crop], levels=[0.5], colors="cyan", linewidths=1)
        ax[3].imshow(res.fake[i].permute(1, 2, 0).numpy()[crop])
        if bool(res.ok[i]):
            draw_box(ax[3], res.box[i] - o, "lime")
        ax[4].imshow(aug["image"][i].permute(1, 2, 0).numpy().clip(0, 1))
        if bool(aug["has_box"][i]):
            draw_box(ax[4], aug["boxes"][i] * 224, "lime")
        ax[0].set_ylabel(f"ratio {float(res.weight[i].max()):.2f}", fontsize=8)
    return save_grid(fig, axes, out, COLUMNS)


def show(cfg: Any) -> Path:
    from iid.augment.show import ShowArgs, open_store

    a = settings(ShowArgs, "sbi_show", cfg)  # the MFS figure's arguments: store, out, n, seed
    out = render(load_real_batch(open_store(a.store), a.n, a.seed), Path(a.out), a.seed)
    print(f"wrote {out}")
    return out


def main(argv: list[str] | None = None) -> None:
    from iid.engine.cli import hydra_entry

    hydra_entry("sbi_show", show, argv)


if __name__ == "__main__":
    main()
