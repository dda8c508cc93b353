import pytest
import torch
import torch.nn.functional as F

from iid.augment.elastic import elastic_deform, elastic_displacement
from iid.augment.filters import crop_rows, erode, paste_rows
from iid.augment.jpeg import _upsample2


@pytest.mark.parametrize("radius", [1, 2, 3, 4])
def test_erode_is_a_square_min_filter(radius):
    g = torch.Generator().manual_seed(radius)
    soft = torch.rand(3, 1, 23, 17, generator=g)
    binary = (soft > 0.3).float()
    binary[0, 0, :, :2] = 1  # touching the border: the border itself does not erode
    for m in (soft, binary):
        ref = -F.max_pool2d(-m, 2 * radius + 1, stride=1, padding=radius)
        assert torch.equal(erode(m, radius), ref)


def test_crop_and_paste_rows_per_sample_and_by_indexing_agree():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 40, 50, generator=g)
    rows = torch.tensor([4, 0, 2])
    oy, ox = torch.tensor([0, 7, 20]), torch.tensor([3, 0, 29])
    a = crop_rows(x, oy, ox, 20, 21, rows, per_row=True)
    b = crop_rows(x, oy, ox, 20, 21, rows, per_row=False)
    assert torch.equal(a, b) and torch.equal(a[1], x[0, :, 7:27, 0:21])
    vals = torch.rand(3, 3, 20, 21, generator=g)
    d1, d2 = x.clone(), x.clone()
    paste_rows(d1, oy, ox, vals, rows, per_row=True)
    paste_rows(d2, oy, ox, vals, rows, per_row=False)
    assert torch.equal(d1, d2) and torch.equal(d1[2, :, 20:40, 29:50], vals[2])
    assert torch.equal(d1[1], x[1])  # rows not named are untouched


def test_elastic_sampled_on_the_support_equals_the_whole_canvas():
    yy, xx = torch.meshgrid(torch.arange(96), torch.arange(96), indexing="ij")
    disc = (((xx - 40) ** 2 + (yy - 50) ** 2) < 20**2).float()[None, None].expand(3, 1, 96, 96).contiguous()
    alpha = torch.tensor([300.0, 400.0, 500.0])
    out = elastic_deform(disc, alpha, 0.08, torch.Generator().manual_seed(1))
    # the same field, sampled everywhere
    disp = elastic_displacement(3, (96, 96), alpha, 0.08, torch.Generator().manual_seed(1))
    sx = (xx + disp[:, 0]) * (2 / 95) - 1
    sy = (yy + disp[:, 1]) * (2 / 95) - 1
    full = F.grid_sample(disc, torch.stack([sx, sy], -1), mode="bilinear", padding_mode="zeros", align_corners=True)
    assert torch.allclose(out, full, atol=1e-5)
    assert ((out > 0.5) != (disc > 0.5)).any()


def test_jpeg_chroma_upsampling_is_bilinear():
    x = torch.rand(2, 2, 7, 9, generator=torch.Generator().manual_seed(0))
    ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(_upsample2(_upsample2(x, -1), -2), ref, atol=1e-6)
