"""Self-Blended Images: the stage keeps every pixel outside its mask, its box holds the mask, it moves
only real rows and balances each batch; the config group turns it and real-only training on."""

from __future__ import annotations

import pytest
import torch

from iid.augment.sbi import SBIConfig, SelfBlend, build, gaussian_bands, sbi_config
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
