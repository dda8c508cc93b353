import sys
from pathlib import Path

import numpy as np
import torch

from iid.augment.mfs import choose_windows
from iid.augment.ssim import dssim_map, ssim_map
from iid.augment.windows import best_window, window_sums

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))  # pytest runs in importlib mode
from reference_mfs import cal_dssim  # noqa: E402  (the reference's OpenCV DSSIM)


def brute_force(score: np.ndarray, h: int, w: int) -> tuple[int, int, float]:
    best, at = -np.inf, (0, 0)
    for y in range(score.shape[0] - h + 1):
        for x in range(score.shape[1] - w + 1):
            v = score[y : y + h, x : x + w].sum()
            if v > best:
                best, at = v, (y, x)
    return at[0], at[1], best


def test_window_sums_match_direct_sums():
    score = torch.rand(2, 9, 11, dtype=torch.float64)
    sums = window_sums(score, 3, 4)
    assert sums.shape == (2, 7, 8)
    assert torch.allclose(sums[1, 2, 5], score[1, 2:5, 5:9].sum())


def test_best_window_equals_brute_force_argmax():
    g = torch.Generator().manual_seed(3)
    score = torch.rand(5, 20, 24, generator=g)
    for h, w in [(4, 8), (8, 4), (20, 24), (1, 1)]:
        yx, total = best_window(score, h, w)
        for i in range(5):
            y, x, best = brute_force(score[i].double().numpy(), h, w)
            assert (int(yx[i, 0]), int(yx[i, 1])) == (y, x)
            assert abs(float(total[i]) - best) < 1e-6


def test_chosen_window_is_argmax_of_face_restricted_dssim():
    # small canvases: crop 24 centred on 32, face = a disc, windows of several sizes per sample
    g = torch.Generator().manual_seed(0)
    n, s, crop = 6, 32, 24
    fake = torch.rand(n, 3, s, s, generator=g)
    source = (fake + 0.3 * torch.rand(n, 3, s, s, generator=g)).clamp(0, 1)
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    face = (((xx - 16) ** 2 + (yy - 17) ** 2) < 100).float().expand(n, 1, s, s)
    hw = torch.tensor([[4, 8], [8, 4], [6, 6], [4, 8], [24, 24], [10, 3]])
    boxes, mean, dmap = choose_windows(fake, source, face, hw, crop)
    full = dssim_map(fake, source).mean(1) * face[:, 0]  # reflect-padded map of the whole canvas
    o = (s - crop) // 2
    for i in range(n):
        h, w = hw[i].tolist()
        score = full[i, o : o + crop, o : o + crop].double().numpy()
        y, x, best = brute_force(score, h, w)
        assert boxes[i].tolist() == [x + o, y + o, x + o + w, y + o + h]
        assert abs(float(mean[i]) * h * w - best) < 1e-3
        # nothing outside the face counts
        assert float(dmap[i, 0][face[i, 0] == 0].abs().max()) == 0.0


def test_ssim_matches_opencv_reference():
    g = torch.Generator().manual_seed(1)
    a = (torch.rand(1, 3, 40, 48, generator=g) * 255).round()
    b = (a + 40 * torch.randn(1, 3, 40, 48, generator=g)).clamp(0, 255).round()
    ours = dssim_map(a.double() / 255, b.double() / 255)[0].permute(1, 2, 0).numpy()
    ref = cal_dssim(a[0].permute(1, 2, 0).numpy().astype(np.uint8), b[0].permute(1, 2, 0).numpy().astype(np.uint8))
    assert np.abs(ours - ref).max() < 1e-6
    assert torch.allclose(ssim_map(a / 255, a / 255), torch.ones(1, 3, 40, 48), atol=1e-5)
