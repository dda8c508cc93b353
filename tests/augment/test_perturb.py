"""Test-time perturbations (iid.augment.perturb): identity at level 0, strength growing with the level,
DeeperForensics-1.0's operations, determinism per (seed, video, frame), the config group, and evaluate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from iid.augment.perturb import LEVELS, NAMES, Perturb, apply, build, row_keys
from iid.errors import UserError


def photos(size: int = 224) -> torch.Tensor:
    """(4, 3, S, S) in [0, 1]: the astronaut and Grace Hopper photographs and two crops of them."""
    import matplotlib
    import skimage

    a = cv2.imread(str(Path(skimage.__file__).parent / "data" / "astronaut.png"))[:, :, ::-1]
    g = cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"))[:, :, ::-1]
    imgs = [a, g, a[60:300, 140:380], g[100:400, 150:450]]
    x = np.stack([cv2.resize(np.ascontiguousarray(i), (size, size), interpolation=cv2.INTER_AREA) for i in imgs])
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255


def keys(b: int, seed: int = 0) -> torch.Tensor:
    return row_keys(seed, torch.zeros(b, dtype=torch.int64), torch.arange(b))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return photos()


@pytest.mark.parametrize("name", NAMES)
def test_level_zero_is_the_identity(name, x):
    assert apply(x, name, 0, keys(4)) is x
    assert build({"name": name, "level": 0}, seed=0) is None  # no stage at all
    batch = {"image": x, "video": torch.zeros(4, dtype=torch.int64), "frame": torch.arange(4)}
    assert Perturb(name, 0)(batch)["image"] is x


@pytest.mark.parametrize("name", NAMES)
def test_strength_grows_with_the_level(name, x):
    """PSNR to the clean crops falls strictly from level to level (inf at 0)."""
    values = [psnr(apply(x, name, lv, keys(4)), x) for lv in range(6)]
    assert values[0] == math.inf
    assert all(a > b + 0.2 for a, b in zip(values, values[1:])), values
    y = apply(x, name, 5, keys(4))
    assert y.shape == x.shape and y.dtype == x.dtype and 0 <= float(y.min()) and float(y.max()) <= 1


def test_deeperforensics_operations(x):
    """Each operation as DeeperForensics-1.0's code computes it (OpenCV on uint8 frames)."""
    img = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    # blur: cv2.GaussianBlur(img, (k, k), k / 6); pixelation: cv2.resize down by the factor and back up
    for lv in range(1, 6):
        k = int(LEVELS["blur"][lv - 1])
        ref = cv2.GaussianBlur(img, (k, k), k / 6).astype(np.float32) / 255
        err = np.abs(apply(t, "blur", lv)[0].permute(1, 2, 0).numpy() - ref)
        assert err.max() < 2 / 255 and err.mean() < 0.5 / 255  # OpenCV's uint8 blur is fixed point
        f = int(LEVELS["pixelation"][lv - 1])
        ref = cv2.resize(cv2.resize(img, (224 // f, 224 // f)), (224, 224)).astype(np.float32) / 255
        err = np.abs(apply(t, "pixelation", lv)[0].permute(1, 2, 0).numpy() - ref)
        assert err.max() < 2 / 255 and err.mean() < 0.5 / 255  # OpenCV rounds the small image to uint8
    # contrast: img * value; saturation: chroma * value (0: grey, the BT.601 luma kept)
    assert torch.allclose(apply(t, "contrast", 5), t * 0.35)
    grey = apply(t, "saturation", 5)
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-6) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-6)
    ycc = lambda a: cv2.cvtColor((a[0].permute(1, 2, 0).numpy()).astype(np.float32), cv2.COLOR_RGB2YCrCb)  # noqa: E731
    y0, y3 = ycc(t), ycc(apply(t, "saturation", 3))  # value 0.2
    np.testing.assert_allclose(y3[..., 0], y0[..., 0], atol=1e-5)
    np.testing.assert_allclose(y3[..., 1:] - 0.5, 0.2 * (y0[..., 1:] - 0.5), atol=1e-5)


def test_noise_has_deeperforensics_variance():
    """On mid-grey (no clipping) the noise in YCbCr has std sqrt(v) * 255/219 (Y) and 255/224 (Cb, Cr)."""
    g = torch.full((8, 3, 224, 224), 0.5)
    for lv, v in enumerate(LEVELS["noise"], 1):
        if v > 0.01:
            continue  # level 5 clips at 0 and 1
        y = apply(g, "noise", lv, keys(8)).permute(0, 2, 3, 1).reshape(-1, 3).numpy()
        ycc = cv2.cvtColor(y[None].astype(np.float32), cv2.COLOR_RGB2YCrCb)[0]
        assert ycc[:, 0].std() == pytest.approx(math.sqrt(v) * 255 / 219, rel=0.02)
        assert ycc[:, 1].std() == pytest.approx(math.sqrt(v) * 255 / 224, rel=0.03)
        assert ycc[:, 2].std() == pytest.approx(math.sqrt(v) * 255 / 224, rel=0.03)


def test_occlusion_blocks():
    """round(v * 224 / 256) grey 8x8 blocks; a level's blocks are kept at the next level."""
    white = torch.ones(2, 3, 224, 224)
    prev = None
    for lv, v in enumerate(LEVELS["occlusion"], 1):
        grey = (apply(white, "occlusion", lv, keys(2)) - 128 / 255).abs().amax(1) < 1e-6  # (2, H, W)
        n_px = grey.flatten(1).sum(1)
        assert int(n_px.max()) <= round(v * 224 / 256) * 64 and int(n_px.min()) >= 64
        if prev is not None:
            assert bool((grey | ~prev).all())  # superset
        prev = grey


def test_compression_is_h264_at_the_crf(x):
    from iid.augment.perturb import h264_roundtrip

    img = (x[1].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    out = apply(x[1:2], "compression", 3)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy() * 255, h264_roundtrip(img, 35), atol=1e-3)
    assert torch.equal(out, apply(x[1:2], "compression", 3))  # deterministic


@pytest.mark.parametrize("name", ["noise", "occlusion"])
def test_deterministic_per_seed_video_and_frame(name, x):
    video = torch.tensor([3, 3, 7, 9])
    frame = torch.tensor([10, 11, 40, 77])
    st = Perturb(name, 4, seed=5)
    full = st({"image": x, "video": video, "frame": frame})["image"]
    # the same rows in another batch, in another order: the same perturbation per row
    perm = torch.tensor([2, 0, 3])
    part = st({"image": x[perm], "video": video[perm], "frame": frame[perm]})["image"]
    assert torch.equal(part, full[perm])
    st.reseed(6)  # another seed: another draw
    assert not torch.equal(st({"image": x, "video": video, "frame": frame})["image"], full)
    st.reseed(5)
    assert torch.equal(st({"image": x, "video": video, "frame": frame})["image"], full)


def test_config_group_and_bad_values(compose_evaluate):
    for name in NAMES:
        cfg = compose_evaluate([f"perturb={name}", "perturb.level=2"])
        stage = build(cfg.perturb, seed=0)
        assert isinstance(stage, Perturb) and (stage.name, stage.level) == (name, 2)
    assert compose_evaluate([]).perturb.name == "none"
    with pytest.raises(UserError, match="perturb.level=7"):
        build({"name": "blur", "level": 7})
    with pytest.raises(UserError, match="perturb.name='fog'"):
        build({"name": "fog", "level": 1})


def test_table4_transcription():
    """The paper's Table 4 (video-level AUC on FF++): 4 methods x 6 perturbations + Avg."""
    import csv

    import iid.conf

    path = Path(iid.conf.__file__).parent / "experiment" / "paper" / "table4.csv"
    rows = list(csv.DictReader(path.open()))
    assert set(rows[0]) == {"table", "row", "column", "metric", "level", "value"}
    cols = {"saturation", "contrast", "occlusion", "noise", "blur", "pixelation", "Avg"}
    by = {(r["row"], r["column"]): float(r["value"]) for r in rows}
    assert {r["column"] for r in rows} == cols and len(rows) == 4 * 7
    assert by[("Ours", "Avg")] == 0.974 and by[("LipForensics", "noise")] == 0.738
    for method in {r["row"] for r in rows}:  # Avg is the mean of the six columns (as printed, to 0.1)
        mean = np.mean([by[(method, c)] for c in cols - {"Avg"}])
        assert abs(mean - by[(method, "Avg")]) < 0.0011, method


# -- evaluate with a perturbation -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose_evaluate():
    from hydra import compose, initialize_config_module

    def _compose(overrides: list[str]):
        with initialize_config_module("iid.conf", version_base="1.3"):
            return compose(config_name="evaluate", overrides=["ckpt=x", *overrides])

    return _compose


def test_evaluate_with_a_perturbation(synthetic_root, synthetic_stores, tmp_path, compose_evaluate):
    """`python -m iid.evaluate ckpt=... perturb=blur perturb.level=3` on a tiny checkpoint: the
    perturbation reaches the model (other scores) and the results' meta."""
    from hydra import compose, initialize_config_module

    from iid.engine.config import plain_config
    from iid.engine.jobs import evaluate
    from iid.module import DetectorModule

    root, stores = synthetic_root, synthetic_stores  # its FF++ test store already prepared
    overrides = ["debug=smoke", "backbone=test_resnet", "model.adm.width=128", f"data.synth.out={root}",
                 "data.synth.size=tiny", f"data.root={root}/FaceForensics++", "data.test_sets=[ffpp]",
                 f"paths.stores={stores}"]  # fmt: skip
    with initialize_config_module("iid.conf", version_base="1.3"):
        cfg = plain_config(compose(config_name="config", overrides=overrides))
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": DetectorModule(cfg, pretrained=False).state_dict(), "iid_config": cfg}, ckpt)
    docs = {}
    for p in (["perturb=none"], ["perturb=blur", "perturb.level=3"]):
        ev = compose_evaluate([f"ckpt={ckpt}", *p])
        out = tmp_path / p[-1].replace("=", "_")
        evaluate(ev, out_dir=out)
        docs[p[0]] = (json.loads((out / "results.json").read_text()), (out / "predictions" / "ffpp.csv").read_text())
    assert docs["perturb=blur"][0]["perturb"] == {"name": "blur", "level": 3}  # results.json's meta
    assert docs["perturb=none"][0]["perturb"] == {"name": "none", "level": 0}
    assert docs["perturb=none"][1] != docs["perturb=blur"][1]  # the frames' scores moved
