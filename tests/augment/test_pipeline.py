import pytest
import torch

from iid.augment.da import FLIP_68
from iid.augment.mfs import KIND_PARTIAL, KIND_REAL
from iid.augment.pipeline import build_eval_transform, build_train_transform
from iid.errors import UserError

from .conftest import make_batch

NO_PHOTO = dict(p_jpeg=0.0, p_color=0.0, p_blur=0.0, p_noise=0.0)


def mask_box(mask: torch.Tensor) -> torch.Tensor:
    """x0y0x1y1 in pixel edges of the nonzero pixels of mask (H, W)."""
    ys, xs = torch.nonzero(mask > 0.5, as_tuple=True)
    return torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)


def test_output_contract(batch):
    out = build_train_transform({}, {}, seed=0)(batch)
    b = batch["label"].shape[0]
    assert out["image"].dtype == torch.float32 and out["image"].shape == (b, 3, 224, 224)
    assert 0.0 <= float(out["image"].min()) and float(out["image"].max()) <= 1.0
    assert out["boxes"].shape == (b, 4) and out["has_box"].dtype == torch.bool
    assert torch.equal(out["has_box"], batch["label"] == 1)
    assert torch.equal(out["label"], batch["label"])  # every fake keeps label 1
    assert (out["boxes"][~out["has_box"]] == 0).all()
    fb = out["boxes"][out["has_box"]]
    assert ((fb >= 0) & (fb <= 1)).all() and (fb[:, 2] > fb[:, 0]).all() and (fb[:, 3] > fb[:, 1]).all()
    assert out["face_mask"].shape == (b, 1, 224, 224) and out["landmarks"].shape == (b, 68, 2)
    assert {"mfs_global", "mfs_partial", "mfs_untouched", "box_mean_area"} <= set(out["stats"])
    assert all(isinstance(v, float) for v in out["stats"].values())


def test_partial_boxes_follow_flip_crop_and_rotation():
    batch = make_batch(12, fakes=[1] * 12, seed=1)
    da = dict(NO_PHOTO, p_flip=0.5, max_rotation=30.0, max_translate=25.0, scale_std=0.15)
    tf = build_train_transform({"p_global": 0.0, "p_poisson": 1.0}, da, seed=3)
    out = tf(batch)
    assert (out["mfs_kind"] == KIND_PARTIAL).all()
    checked = 0
    for i in range(12):
        # the warped window mask (Poisson: exactly the window) re-derives the box
        m = out["swap_mask"][i, 0]
        if (m > 0.5).sum() < 50:
            continue
        derived = mask_box(m) / 224
        box = out["boxes"][i]
        # AABB of the warped rectangle vs the pixels of the warped mask: within ~2 px
        assert torch.allclose(box, derived, atol=2.5 / 224), (i, box * 224, derived * 224)
        checked += 1
    assert checked >= 8
    assert 0 < out["stats"]["da_flip"] < 1


def test_flip_really_flips_images_masks_landmarks_and_boxes():
    batch = make_batch(6, fakes=[1] * 6, seed=2)
    mfs = {"p_global": 0.0, "p_poisson": 0.0}
    base = dict(NO_PHOTO, p_affine=0.0)
    a = build_train_transform(mfs, dict(base, p_flip=0.0), seed=0)(batch)
    b = build_train_transform(mfs, dict(base, p_flip=1.0), seed=0)(batch)
    assert torch.allclose(b["image"], a["image"].flip(-1), atol=1e-6)
    assert torch.equal(b["face_mask"], a["face_mask"].flip(-1))
    assert torch.allclose(b["swap_mask"], a["swap_mask"].flip(-1), atol=1e-6)
    mirrored = a["landmarks"].clone()
    mirrored[..., 0] = 223 - mirrored[..., 0]
    assert torch.allclose(b["landmarks"], mirrored[:, FLIP_68], atol=1e-4)
    ab, bb = a["boxes"], b["boxes"]
    assert torch.allclose(bb, torch.stack([1 - ab[:, 2], ab[:, 1], 1 - ab[:, 0], ab[:, 3]], 1), atol=1e-5)
    assert not torch.allclose(ab, bb)
    # left eye of the flipped image is the mirror of the right eye of the original
    assert torch.allclose(b["landmarks"][:, 36], mirrored[:, 45], atol=1e-4)


def test_no_da_is_the_centred_crop_and_mfs_off_gives_whole_boxes(batch):
    out = build_train_transform({"enabled": False}, {"enabled": False})(batch)
    assert torch.allclose(out["image"], batch["image"][..., 16:240, 16:240].float() / 255, atol=1e-6)
    assert torch.allclose(out["landmarks"], batch["landmarks"] - 16, atol=1e-4)
    fake = batch["label"] == 1
    assert (out["boxes"][fake] == torch.tensor([0.0, 0.0, 1.0, 1.0])).all()
    assert out["stats"]["mfs_untouched"] == 1.0


def test_reals_unchanged_by_mfs(batch):
    out = build_train_transform({"p_global": 0.5}, {"enabled": False}, seed=1)(batch)
    real = batch["label"] == 0
    assert (out["mfs_kind"][real] == KIND_REAL).all()
    assert torch.allclose(out["image"][real], batch["image"][real][..., 16:240, 16:240].float() / 255, atol=1e-6)


def test_same_seed_same_batch(batch):
    a = build_train_transform({}, {}, seed=7)(batch)
    b = build_train_transform({}, {}, seed=7)(batch)
    c = build_train_transform({}, {}, seed=8)(batch)
    for k in ("image", "boxes", "landmarks", "face_mask"):
        assert torch.equal(a[k], b[k])
    assert not torch.equal(a["image"], c["image"])
    tf = build_train_transform({}, {}, seed=7)
    first = tf(batch)["image"]
    tf.reseed(7)
    assert torch.equal(tf(batch)["image"], first)


def test_eval_transform_face_scale(batch):
    out = build_eval_transform()(batch)
    assert torch.allclose(out["image"], batch["image"][..., 16:240, 16:240].float() / 255, atol=1e-6)
    zoom = build_eval_transform(face_scale=1.25)(batch)
    # zoom about the canvas centre: landmark spread grows by the face scale
    spread = (zoom["landmarks"] - 111.5).norm(dim=-1) / (out["landmarks"] - 111.5).norm(dim=-1)
    assert torch.allclose(spread, torch.full_like(spread, 1.25), atol=1e-3)
    assert torch.equal(out["has_box"], batch["label"] == 1)
    with pytest.raises(UserError):
        build_eval_transform(face_scale=0)


def test_bad_da_config_is_a_user_error():
    with pytest.raises(UserError, match="da.p_flip"):
        build_train_transform({}, {"p_flip": -0.1})
    with pytest.raises(UserError, match="da.jpeg_quality"):
        build_train_transform({}, {"jpeg_quality": [0, 120]})


def test_output_does_not_depend_on_the_thread_count():
    # 40 samples: two CPU chunks, run inline on one thread or by two worker threads
    batch = make_batch(40, seed=3)
    outs = []
    for workers in (1, 2):
        tf = build_train_transform({}, {}, seed=5)
        tf.workers = workers
        outs.append(tf(batch))
    for k in ("image", "face_mask", "swap_mask", "boxes", "landmarks", "mfs_kind"):
        assert torch.equal(outs[0][k], outs[1][k]), k
    assert outs[0]["stats"] == outs[1]["stats"]


def test_a_kept_output_is_never_overwritten_by_the_next_call(batch):
    tf = build_train_transform({}, {}, seed=0)
    first = tf(batch)
    kept = first["image"].clone()
    second = tf(batch)  # another draw of the random stream, while `first` is still held
    assert torch.equal(first["image"], kept)
    assert not torch.equal(second["image"], kept)
    del first
    third = tf(batch)
    assert third["image"].shape == kept.shape


def test_uint8_channels_last_batch_as_the_store_gives_it(batch):
    # the DataModule hands image/source as channels-last views of HWC rows
    cl = dict(batch)
    for k in ("image", "source"):
        cl[k] = batch[k].permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    a = build_train_transform({}, {}, seed=2)(batch)
    b = build_train_transform({}, {}, seed=2)(cl)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["boxes"], b["boxes"])


def test_photometric_per_sample_and_batched_agree():
    from iid.augment.config import da_config
    from iid.augment.da import apply_photometric, draw_photometric

    cfg = da_config({"p_jpeg": 0.5, "p_color": 0.5, "p_blur": 0.5, "p_noise": 0.5})
    x = make_batch(12, seed=4)["image"][..., 16:240, 16:240].float() / 255
    draws = draw_photometric(12, torch.Generator().manual_seed(0), "cpu")
    a, b = x.clone(), x.clone()
    sa = apply_photometric(a, cfg, draws, torch.Generator().manual_seed(1), per_row=True)
    sb = apply_photometric(b, cfg, draws, torch.Generator().manual_seed(1), per_row=False)
    assert sa == sb and all(0 < v < 1 for v in sa.values())
    assert torch.allclose(a, b, atol=1e-6)
    assert (a != x).flatten(1).any(1).sum() >= 8  # most samples got at least one op
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0


def test_worker_choice_follows_the_measured_speed():
    from iid.augment.chunks import _WorkerChoice

    c = _WorkerChoice()
    assert c.pick(1) == 1  # nothing to choose
    speed = {1: 1.0, 2: 0.6}  # seconds per chunk: two threads faster (idle cores)
    picks = []
    for _ in range(24):
        w = c.pick(2)
        c.record(2, w, speed[w])
        picks.append(w)
    assert picks[:2] == [1, 2] and picks[2:].count(2) >= 18 and 1 in picks[2:]  # re-measures the other
    speed = {1: 1.0, 2: 1.3}  # the cores got busy: two threads now slower
    for _ in range(24):
        w = c.pick(2)
        c.record(2, w, speed[w])
        picks.append(w)
    assert picks[-16:].count(1) >= 14
