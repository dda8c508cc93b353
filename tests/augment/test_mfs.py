import pytest
import torch

from iid.augment.config import mfs_config
from iid.augment.mfs import (
    KIND_FAKE_INTO_SOURCE,
    KIND_KEEP,
    KIND_PARTIAL,
    KIND_REAL,
    KIND_SOURCE_INTO_FAKE,
    KIND_UNCHANGED,
    multi_scale_facial_swap,
)
from iid.errors import UserError

from .conftest import make_batch


def run(batch, seed=0, **cfg):
    b = {k: v for k, v in batch.items()}
    f = b["image"].float() / 255
    s = b["source"].float() / 255
    res = multi_scale_facial_swap(f, s, b["has_source"], b["face_mask"].float(), b["label"], mfs_config(cfg),
                                  torch.Generator().manual_seed(seed))
    return f, s, res


@pytest.mark.parametrize("p_poisson", [0.0, 1.0])
def test_global_swaps_change_pixels_only_inside_the_hull(p_poisson):
    batch = make_batch(8, fakes=[1] * 8)
    f, s, res = run(batch, p_global=1.0, p_poisson=p_poisson, p_elastic=0.0,
                    p_source_into_fake=0.5, p_fake_into_source=0.5, p_keep=0.0)
    face = batch["face_mask"].bool().expand(8, 3, 256, 256)
    kinds = set(res.kind.tolist())
    assert kinds == {KIND_SOURCE_INTO_FAKE, KIND_FAKE_INTO_SOURCE}
    into_fake = (res.kind == KIND_SOURCE_INTO_FAKE).view(8, 1, 1, 1).expand_as(f)
    bg = torch.where(into_fake, f, s)
    assert torch.equal(res.image[~face], bg[~face])  # outside: the background, untouched
    assert (res.image - bg)[face].abs().mean() > 0.01  # inside: really swapped
    assert float(res.swap_mask[~face[:, :1]].abs().max()) == 0.0


@pytest.mark.parametrize("p_poisson", [0.0, 1.0])
def test_partial_swap_changes_only_the_window_and_reports_it(p_poisson):
    batch = make_batch(8, fakes=[1] * 8)
    f, s, res = run(batch, p_global=0.0, p_poisson=p_poisson)
    assert (res.kind == KIND_PARTIAL).all()
    for i in range(8):  # check per sample (test code, not the hot path)
        x0, y0, x1, y1 = res.box[i].long().tolist()
        h, w = y1 - y0, x1 - x0
        assert (h, w) in {(40, 80), (80, 40), (80, 120), (120, 80), (120, 160), (160, 120), (224, 224)}
        assert 16 <= x0 and x1 <= 240 and 16 <= y0 and y1 <= 240  # on the 224 crop
        inside = torch.zeros(256, 256, dtype=torch.bool)
        inside[y0:y1, x0:x1] = True
        assert torch.equal(res.image[i][:, ~inside], s[i][:, ~inside])  # source outside the window
        assert (res.image[i][:, inside] - s[i][:, inside]).abs().mean() > 0.005


def test_reals_and_sourceless_fakes_pass_untouched():
    batch = make_batch(6, fakes=[0, 1, 0, 1, 1, 0])
    batch["has_source"][3] = False
    f, s, res = run(batch, p_global=0.5)
    for i in (0, 2, 5):
        assert res.kind[i] == KIND_REAL and torch.equal(res.image[i], f[i])
    assert res.kind[3] == KIND_UNCHANGED and torch.equal(res.image[3], f[3])


def test_probabilities_split_as_configured():
    batch = make_batch(64, fakes=[1] * 64, s=64)  # canvases smaller than the crop are fine for global
    cfg = dict(p_global=1.0, p_elastic=0.0, p_poisson=0.0, crop_size=64, windows=[[8, 16]])
    _, _, res = run(batch, p_source_into_fake=0.0, p_fake_into_source=0.0, p_keep=1.0, **cfg)
    assert (res.kind == KIND_KEEP).all()
    _, _, res = run(batch, **cfg)
    share = torch.bincount(res.kind, minlength=6).float() / 64
    assert 0.3 < share[KIND_SOURCE_INTO_FAKE] < 0.7 and 0.1 < share[KIND_FAKE_INTO_SOURCE] < 0.4


def test_same_seed_same_result_and_elastic_changes_the_mask():
    batch = make_batch(6, fakes=[1] * 6)
    cfg = dict(p_global=1.0, p_elastic=1.0, p_poisson=0.0, p_keep=0.0, p_source_into_fake=1.0,
               p_fake_into_source=0.0)
    _, _, a = run(batch, seed=5, **cfg)
    _, _, b = run(batch, seed=5, **cfg)
    _, _, c = run(batch, seed=6, **cfg)
    assert torch.equal(a.image, b.image) and not torch.equal(a.image, c.image)
    assert a.elastic.all()
    hull = batch["face_mask"].float()
    assert ((a.swap_mask > 0) != (hull > 0)).any()


@pytest.mark.parametrize(
    "bad",
    [{"p_global": 1.3}, {"p_keep": 0.5}, {"windows": [[0, 10]]}, {"blur_kernel": 4}, {"nope": 1},
     {"p_poisson": "often"}],
)
def test_bad_config_is_a_user_error(bad):
    with pytest.raises(UserError) as err:
        mfs_config(bad)
    assert "\n" not in str(err.value)
