import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from iid.augment.blending import alpha_blend, poisson_blend, soft_mask, solve_poisson_dirichlet0
from iid.augment.elastic import elastic_deform
from iid.augment.filters import erode

# Poisson vs cv2.seamlessClone on the same inputs: mean |difference| inside the mask, in grey levels
# (0..255). Both solve cv2's problem (bounding rectangle, guidance from the 3x-eroded mask); they
# differ in the rectangle's exact placement and rounding. On this pair ours is 1.85 levels from cv2,
# Perez's masked Dirichlet problem 11.0, a plain paste 31.6, the background 41.5.
POISSON_MAD_BOUND = 3.0


def _smooth(seed: int, s: int, cells: int = 8) -> np.ndarray:
    r = np.random.default_rng(seed).random((cells, cells, 3)).astype(np.float32)
    return (cv2.resize(r, (s, s), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).round().astype(np.uint8)


def test_poisson_matches_seamless_clone():
    s = 128
    bg, fg = _smooth(1, s), (_smooth(2, s) * 0.6 + 60).astype(np.uint8)
    yy, xx = np.mgrid[:s, :s]
    # odd-sized bounding box centred on an integer pixel: cv2's placement is then exact
    mask = ((((xx - 64) / 31.0) ** 2 + ((yy - 60) / 41.0) ** 2) <= 1).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    centre = ((xs.min() + xs.max()) // 2, (ys.min() + ys.max()) // 2)
    ref = cv2.seamlessClone(fg, bg, mask * 255, centre, cv2.NORMAL_CLONE).astype(np.float32)

    def t(a):
        return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255

    out = poisson_blend(t(bg), t(fg), torch.from_numpy(mask)[None, None].float())
    out = out[0].permute(1, 2, 0).numpy() * 255
    inside = mask.astype(bool)
    mad = np.abs(out - ref)[inside].mean()
    assert mad < POISSON_MAD_BOUND, mad
    # and it really is a gradient-domain result: far from a plain paste of the foreground
    assert np.abs(fg.astype(np.float32) - ref)[inside].mean() > 2 * mad
    # outside the mask: exactly the background
    assert np.array_equal(out[~inside], bg.astype(np.float32)[~inside] / 255 * 255)


def _lap(x):
    return 4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]


def test_dst_solver_inverts_the_laplacian():
    rhs = torch.randn(2, 3, 17, 23, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    u = solve_poisson_dirichlet0(rhs)
    assert (-_lap(F.pad(u, (1, 1, 1, 1))) - rhs).abs().max() < 1e-10


def test_poisson_solves_the_discrete_equation():
    g = torch.Generator().manual_seed(0)
    bg = F.interpolate(torch.rand(2, 3, 6, 6, generator=g), size=(40, 40), mode="bilinear")
    fg = F.interpolate(torch.rand(2, 3, 6, 6, generator=g), size=(40, 40), mode="bilinear")
    mask = torch.zeros(2, 1, 40, 40)
    mask[..., 10:30, 8:33] = 1
    # No erosion + rectangular mask: exactly Perez's problem (eq. 3), the equation holds on every
    # mask pixel, with the background just outside as boundary.
    out = poisson_blend(bg, fg, mask, guidance_erode=0)
    inner = mask[..., 1:-1, 1:-1].bool().expand(2, 3, 38, 38)
    assert (_lap(out) - _lap(fg))[inner].abs().max() < 1e-4
    assert (_lap(out) - _lap(bg))[inner].abs().max() > 0.05  # not trivially the background
    # Elliptic mask, cv2's eroded guidance: the equation holds where the guidance is the foreground.
    yy, xx = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    ell = ((((xx - 20) / 14.0) ** 2 + ((yy - 19) / 11.0) ** 2) <= 1).float().expand(2, 1, 40, 40)
    out = poisson_blend(bg, fg, ell)
    core = erode(ell, 3)[..., 1:-1, 1:-1].bool().expand(2, 3, 38, 38)
    assert core.sum() > 100
    assert (_lap(out) - _lap(fg))[core].abs().max() < 1e-4


def test_poisson_rectangle_is_per_sample():
    # Equal-size windows at different places (a partial-swap group): each sample's result is what it
    # gets alone, i.e. its solve rectangle is its own window, not the union of the batch's.
    g = torch.Generator().manual_seed(1)
    bg, fg = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 5:25, 8:40] = 1
    mask[1, :, 30:50, 20:52] = 1
    both = poisson_blend(bg, fg, mask)
    for i in range(2):
        alone = poisson_blend(bg[i : i + 1], fg[i : i + 1], mask[i : i + 1])
        assert torch.allclose(both[i : i + 1], alone, atol=1e-5)
    assert not torch.equal(both, bg)


def test_blends_change_pixels_only_inside_the_mask():
    g = torch.Generator().manual_seed(0)
    bg, fg = torch.rand(3, 3, 48, 48, generator=g), torch.rand(3, 3, 48, 48, generator=g)
    mask = torch.zeros(3, 1, 48, 48)
    mask[0, :, 10:20, 5:40] = 1
    mask[1, :, 0:48, 0:10] = 1  # touching the border
    a = soft_mask(mask)
    assert float(a[mask == 0].abs().max()) == 0.0 and float(a.max()) > 0.9
    out = alpha_blend(bg, fg, a)
    assert torch.equal(out[(mask == 0).expand_as(out)], bg[(mask == 0).expand_as(bg)])
    outp = poisson_blend(bg, fg, mask)
    assert torch.equal(outp[(mask == 0).expand_as(out)], bg[(mask == 0).expand_as(bg)])
    assert torch.equal(outp[2], bg[2])  # empty mask


def test_elastic_deforms_but_keeps_the_mask_roughly_in_place():
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    disc = ((((xx - 64) ** 2 + (yy - 64) ** 2) < 40**2).float())[None, None].expand(4, 1, 128, 128)
    out = elastic_deform(disc, torch.full((4,), 400.0), 0.08, g)
    changed = (out > 0.5) != (disc > 0.5)
    frac = changed.float().mean((1, 2, 3))
    assert (frac > 0.001).all() and (frac < 0.2).all()
    assert not torch.equal(out[0], out[1])  # each sample its own field


@pytest.mark.parametrize("codec", ["libjpeg_roundtrip", "batched_roundtrip"])  # the reference, ours
def test_jpeg_roundtrip_matches_opencv(codec):
    from iid.augment import jpeg

    jpeg_roundtrip = getattr(jpeg, codec)
    x = F.interpolate(torch.rand(2, 3, 14, 14, generator=torch.Generator().manual_seed(3)), size=(112, 112),
                      mode="bilinear")
    for q in (15, 80):
        ours = jpeg_roundtrip(x, torch.full((2,), float(q)))[0].permute(1, 2, 0).numpy() * 255
        img = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        _, enc = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        ref = cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32)
        # a real codec: far closer to libjpeg's output than to its input
        assert np.abs(ours - ref).mean() < 0.3 * np.abs(img - ref).mean() + 0.5, q
