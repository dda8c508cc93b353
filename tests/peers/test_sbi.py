"""Self-Blended Images: the stage keeps every pixel outside its mask, its box holds the mask, it moves
only real rows and balances each batch; the config group turns it and real-only training on."""

from __future__ import annotations

import pytest
import torch

from iid.augment.config import SBIConfig, sbi_config
from iid.augment.sbi import SelfBlend, build
from iid.augment.sbi_ops import erode_rect, gaussian_bands, separable_blur
from iid.errors import UserError

TENSOR_KEYS = ("image", "source", "has_source", "face_mask", "landmarks", "label", "identity", "video", "frame")


def run(batch, seed=0, **cfg):
    return build(cfg, seed)(batch, keep_mask=True)


@pytest.mark.parametrize("paired", [True, False])
def test_every_pixel_outside_the_mask_is_the_real_frame(make_real_batch, paired):
    batch = make_real_batch(8, seed=1)
    out = run(batch, paired=paired)
    rows = out["has_artifact_box"].nonzero()[:, 0]
    assert len(rows) == 4
    for r in rows:
        m = out["sbi_mask"][r, 0]
        # the frame a pseudo-fake is made of: itself, or (paired) the real row whose index it took
        src = int(out["frame"][r] - 1000) if paired else int(r)
        outside = m == 0
        assert outside.any() and (m > 0).sum() > 1000
        assert torch.equal(out["image"][r][:, outside], batch["image"][src][:, outside])
        inside = m > 0.5
        assert (out["image"][r][:, inside].float() - batch["image"][src][:, inside].float()).abs().mean() > 1


def test_box_is_the_tight_bounding_box_of_the_mask(make_real_batch):
    out = run(make_real_batch(8, seed=2), paired=False)
    for r in out["has_artifact_box"].nonzero()[:, 0]:
        ys, xs = (out["sbi_mask"][r, 0] > 0).nonzero(as_tuple=True)
        x0, y0, x1, y1 = out["artifact_box_canvas"][r].tolist()
        assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1  # contains the mask
        assert (x0, y0, x1 - 1, y1 - 1) == (xs.min(), ys.min(), xs.max(), ys.max())  # and no more
    assert not out["artifact_box_canvas"][~out["has_artifact_box"]].any()


@pytest.mark.parametrize("paired", [True, False])
def test_only_real_rows_move_and_each_batch_is_balanced(make_real_batch, paired):
    labels = [0, 1, 0, 0, 1, 0, 0, 0, 0, 0]  # two of the data set's fakes in the batch
    batch = make_real_batch(10, seed=3, labels=labels)
    before = {k: batch[k].clone() for k in TENSOR_KEYS}
    out = run(batch, paired=paired)
    fake_in = before["label"] == 1
    for k in TENSOR_KEYS:  # the batch's own fakes are never read into or written
        assert torch.equal(out[k][fake_in], before[k][fake_in]), k
        assert torch.equal(batch[k], before[k]), k  # the input batch is left as it was
    made = out["has_artifact_box"]
    assert not (made & fake_in).any() and (out["label"][made] == 1).all()
    assert int(made.sum()) == (4 if paired else 5)  # half the rows (paired: half of the 8 reals)
    untouched = ~made
    for k in TENSOR_KEYS:
        assert torch.equal(out[k][untouched], before[k][untouched]), k
    if paired:  # every pseudo-fake's frame is still in the batch as a real row
        for r in made.nonzero()[:, 0]:
            partner = int(out["frame"][r] - 1000)
            assert not made[partner] and out["label"][partner] == 0 and partner != int(r)
            assert out["identity"][r] == out["identity"][partner] and out["video"][r] == out["video"][partner]


def test_a_batch_of_reals_becomes_half_pseudo_fakes_at_any_size(make_real_batch):
    for b in (2, 7, 16):
        out = run(make_real_batch(b, s=64, seed=b), paired=False)
        assert int(out["label"].sum()) in (b // 2, (b + 1) // 2)
        out = run(make_real_batch(b, s=64, seed=b))
        assert int(out["label"].sum()) == b // 2


def test_same_seed_same_output_and_reseed_restarts(make_real_batch):
    batch = make_real_batch(6, s=128, seed=4)
    a, b = build({}, 7), build({}, 7)
    x, y = a(batch), b(batch)
    assert torch.equal(x["image"], y["image"]) and torch.equal(x["label"], y["label"])
    z = a(batch)
    assert not torch.equal(z["image"], x["image"])  # the stream moves on
    a.reseed(7)
    assert torch.equal(a(batch)["image"], x["image"])


def test_an_empty_face_mask_leaves_the_row_real(make_real_batch):
    batch = make_real_batch(4, s=64, seed=5)
    batch["face_mask"] = torch.zeros_like(batch["face_mask"])
    out = run(batch, paired=False)
    assert int(out["label"].sum()) == 0 and torch.equal(out["image"], batch["image"])


def test_target_jitter_moves_pixels_outside_the_mask_as_sbi_does(make_real_batch):
    batch = make_real_batch(4, s=128, seed=6)
    out = run(batch, paired=False, p_target_jitter=1.0, brightness=0.5)
    r = int(out["has_artifact_box"].nonzero()[0, 0])
    outside = out["sbi_mask"][r, 0] == 0
    assert not torch.equal(out["image"][r][:, outside], batch["image"][r][:, outside])


def test_gaussian_bands_are_normalised_and_truncated():
    k = gaussian_bands(torch.tensor([2.0, 5.0]), torch.tensor([3.0, 12.5]), 64)
    assert torch.allclose(k[:, 32].sum(-1), torch.ones(2))  # interior rows sum to 1
    assert (k[0, 32, :28] == 0).all() and (k[0, 32, 36:] == 0).all() and (k[0, 32, 29:36] > 0).all()
    assert (k[1, 32, 44] > 0) and (k[1, 32, 45] == 0)


def test_erode_rect_is_a_min_filter_with_each_samples_own_rectangle():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand((3, 40, 50), generator=g) > 0.15).float()
    ry, rx = torch.tensor([0, 2, 3]), torch.tensor([1, 0, 4])
    padded = torch.nn.functional.pad(x, (5, 5, 5, 5))  # outside counts as 0
    for i in range(3):
        a, b = int(ry[i]), int(rx[i])
        windows = padded[i].unfold(0, 2 * a + 1, 1).unfold(1, 2 * b + 1, 1)  # (H + 10 - 2a, W + 10 - 2b, ..)
        expect = windows.amin((-1, -2))[5 - a : 5 - a + 40, 5 - b : 5 - b + 50]
        assert torch.equal(erode_rect(x, ry, rx)[i], expect)


def test_the_coarse_elastic_field_has_the_full_resolution_fields_spread_and_smoothness():
    """The field is drawn on a 4-px grid (module docstring): its displacement's standard deviation and
    its correlation 7 px away must be those of uniform noise blurred at canvas resolution."""
    s, n = 256, 24
    stage = SelfBlend(SBIConfig(), seed=0)
    coarse, cell = stage._elastic(n, s, 2, torch.Generator().manual_seed(1), torch.device("cpu"))
    assert cell == 4
    coarse = torch.nn.functional.interpolate(coarse, size=(s, s), mode="bilinear", align_corners=False)
    sigma = torch.tensor([7.0])
    noise = torch.rand((n * 2, s, s), generator=torch.Generator().manual_seed(2)) * 2 - 1
    full = separable_blur(noise, gaussian_bands(sigma, 4 * sigma, s)[0]).mul_(50.0).view(n, 2, s, s)

    def spread_and_corr(f):
        inner = f[..., 40:-40, 40:-40]  # away from the zero-padded border
        a, b = inner[..., :-7], inner[..., 7:]
        return float(inner.std()), float(((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std()))

    (sd_c, corr_c), (sd_f, corr_f) = spread_and_corr(coarse), spread_and_corr(full)
    assert sd_c == pytest.approx(sd_f, rel=0.1) and corr_c == pytest.approx(corr_f, abs=0.08)


def _draws(n, **fixed):
    u = {key: torch.full((n,), 0.5) for key in ("p_rgb", "contrast", "brightness", "p_down", "factor", "sharp_a", "sharp_l")}
    u["rgb"] = torch.full((n, 3), 0.5)
    u.update({key: torch.tensor(v, dtype=torch.float32) for key, v in fixed.items()})
    return u


def test_sharpen_is_albumentations_kernel():
    """(1 + a(8+L)) x - a box3x3 written as a lerp must equal filter2D with (1-a) I + a K, reflect."""
    import cv2
    import numpy as np

    from iid.augment.sbi_jitter import sharpen

    cfg = SBIConfig()
    x = torch.rand((2, 3, 20, 24), generator=torch.Generator().manual_seed(3)) * 255
    u = _draws(2, sharp_a=[0.0, 1.0], sharp_l=[1.0, 0.3])
    got = sharpen(x.clone(), u, cfg)
    for i, (a, light) in enumerate(((0.2, 1.0), (0.5, 0.65))):
        kernel = np.full((3, 3), -a, np.float32)
        kernel[1, 1] = 1 - a + a * (8 + light)
        img = x[i].permute(1, 2, 0).numpy()
        want = np.clip(cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101), 0, 255)
        assert np.allclose(got[i].permute(1, 2, 0).numpy(), want, atol=1e-3)


@pytest.mark.parametrize("factor", [2, 4])
def test_the_downscaled_copy_sampled_in_place_is_its_bilinear_upscale(factor):
    """Sampling the downscaled copy at canvas pixels gives what downscaling (nearest) and upscaling it
    to the canvas (bilinear) gives there, away from the canvas border, on any pre-image window."""
    from iid.augment.sbi_jitter import jittered_at

    s = 64
    image = (torch.rand((1, 3, s, s), generator=torch.Generator().manual_seed(4)) * 255).to(torch.uint8)
    u = _draws(1, p_down=[0.0], factor=[0.0 if factor == 2 else 0.99])
    ys, xs = torch.arange(13.0, 47.0)[None], torch.arange(9.0, 51.0)[None]
    got = jittered_at(image, u, ys, xs, SBIConfig())
    f = image.float()
    want = torch.nn.functional.interpolate(torch.nn.functional.interpolate(f, size=(s // factor,) * 2, mode="nearest"),
                                           size=(s, s), mode="bilinear", align_corners=False)[:, :, 13:47, 9:51]
    assert torch.allclose(got, want, atol=1e-3)  # draws at 0.5: no colour change


def test_chunks_and_worker_threads_do_not_change_the_output(make_real_batch):
    batch = make_real_batch(20, s=128, seed=8)  # 10 pseudo-fakes: two CPU chunks
    one, two = build({}, 5), build({}, 5)
    one.workers, two.workers = 1, 2
    a, b = one(batch, keep_mask=True), two(batch, keep_mask=True)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["sbi_mask"], b["sbi_mask"])
    assert torch.equal(a["artifact_box_canvas"], b["artifact_box_canvas"])


def test_config_errors_are_one_line():
    with pytest.raises(UserError, match="sbi.kernel1"):
        sbi_config({"kernel1": [25, 5]})
    with pytest.raises(UserError, match="unknown key"):
        sbi_config({"ratio": 1})
    with pytest.raises(UserError, match="fake_share"):
        sbi_config({"fake_share": 2})
    assert build({"enabled": False}) is None and isinstance(build({}), SelfBlend)
    assert SBIConfig().scale[1] == pytest.approx(1 / 0.95)


def test_the_group_turns_on_the_stage_and_real_only_training(compose_cfg):
    from iid.augment.stages import build_stages
    from iid.engine.config import budget, eval_protocol, plain_config
    from iid.engine.data import build_datamodule

    off = plain_config(compose_cfg([]))
    on = plain_config(compose_cfg(["sbi=on", "model=binary"]))
    assert off["sbi"] == {"enabled": False} and len(build_stages(off, "train")) == 0
    stages = build_stages(on, "train")
    assert len(stages) == 1 and isinstance(stages[0], SelfBlend) and len(build_stages(on, "eval")) == 0
    assert build_datamodule(on, budget(on), eval_protocol(on), 0).real_only
    assert not build_datamodule(off, budget(off), eval_protocol(off), 0).real_only


def test_the_train_transform_warps_the_pseudo_fakes_box_like_a_partial_window(make_real_batch):
    from iid.augment.pipeline import build_train_transform

    sbi = run(make_real_batch(8, seed=7), paired=False)
    made = sbi["has_artifact_box"]
    plain = build_train_transform({"enabled": False}, {"enabled": False})(sbi)  # the canonical 224 crop
    expect = (sbi["artifact_box_canvas"][made] - 16).clamp(0, 224) / 224
    assert torch.equal(plain["has_box"], made) and torch.allclose(plain["boxes"][made], expect, atol=1e-5)
    aug = build_train_transform({"enabled": False}, {}, seed=3)(sbi)  # DA moves the box with the image
    boxes = aug["boxes"][made]
    assert torch.equal(aug["has_box"], made) and not aug["boxes"][~made].any()
    assert (boxes[:, 2:] > boxes[:, :2]).all() and ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) < 0.8).all()
