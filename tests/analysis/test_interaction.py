"""I([N]) on toy models whose interaction is known exactly, and its batching."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from iid.analysis.interaction import interaction, unit_masks
from iid.models.output import ModelOutput


class Toy(nn.Module):
    """A 'detector' whose fake logit is fn(x) and real logit 0, so its log-odds score is fn(x)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        f = self.fn(x)
        return ModelOutput(torch.stack([torch.zeros_like(f), f], 1), f[:, None])


GRID, SIZE = 4, 32  # 16 units of 8x8 px: small and exact


def unit_sum(x: torch.Tensor, i: int) -> torch.Tensor:
    m = unit_masks(SIZE, GRID)[i, 0]
    return (x * m).sum((1, 2, 3))


def test_units_partition_the_image():
    m = unit_masks(224, 16)
    assert m.shape == (256, 1, 224, 224)
    assert (m.sum(0) == 1).all()  # every pixel in exactly one unit
    assert m[0, 0, :14, :14].all() and not m[0, 0, 14:, :].any()  # unit 0 = the top-left 14x14 square
    assert m[17, 0, 14:28, 14:28].all()  # row 1, column 1


def test_additive_model_has_no_interaction():
    torch.manual_seed(0)
    w = torch.randn(1, 3, SIZE, SIZE)
    # additive over units but nonlinear inside each: f = sum_i tanh(<w, x> restricted to unit i)
    toy = Toy(lambda x: sum(torch.tanh(unit_sum(x * w, i) / 10) for i in range(GRID * GRID)))
    x = torch.randn(5, 3, SIZE, SIZE)
    for base in (torch.zeros(3, SIZE, SIZE), torch.randn(3, SIZE, SIZE)):
        res = interaction(toy, x, base, grid=GRID, batch_size=7)
        assert res["I"].abs().max() < 1e-4
        assert res["f_full"].abs().max() > 0.1  # the score itself is not trivially 0


def test_known_pairwise_interaction_is_recovered():
    torch.manual_seed(1)
    a, b = 3, 12
    toy = Toy(lambda x: unit_sum(x, a) * unit_sum(x, b) + 0.5 * unit_sum(x, 5))
    x = torch.rand(4, 3, SIZE, SIZE)
    base = torch.rand(3, SIZE, SIZE)
    res = interaction(toy, x, base, grid=GRID, batch_size=16)
    # f(N) - f({a}) - f({b}) + f(empty) for a product of two units: (A - A0)(B - B0); the linear term adds nothing
    expect = (unit_sum(x, a) - unit_sum(base[None], a)) * (unit_sum(x, b) - unit_sum(base[None], b))
    assert torch.allclose(res["I"].float(), expect, rtol=1e-3, atol=1e-3)


def test_three_way_interaction_of_all_units():
    # f = prod of 3 unit sums, baseline 0: every proper subset scores 0, so I([N]) = f(N)
    toy = Toy(lambda x: unit_sum(x, 0) * unit_sum(x, 7) * unit_sum(x, 15))
    x = torch.rand(3, 3, SIZE, SIZE)
    res = interaction(toy, x, torch.zeros(3, SIZE, SIZE), grid=GRID, batch_size=5)
    assert torch.allclose(res["I"], res["f_full"], rtol=1e-5)
    assert float(res["f_empty"]) == 0.0


def test_batching_does_not_change_the_result_and_passes_are_batched():
    torch.manual_seed(2)
    w = torch.randn(1, 3, SIZE, SIZE)
    calls = []

    def fn(x):
        calls.append(x.shape[0])
        return torch.relu((x * w).sum((1, 2, 3))) ** 1.5

    x, base = torch.rand(3, 3, SIZE, SIZE), torch.zeros(3, SIZE, SIZE)
    r1 = interaction(Toy(fn), x, base, grid=GRID, batch_size=64)
    n_calls = len(calls)
    r2 = interaction(Toy(fn), x, base, grid=GRID, batch_size=5)
    assert torch.allclose(r1["I"], r2["I"], atol=1e-5)
    # 1 baseline pass + 1 pass of full images + ceil(3 * 16 / 64) singleton batches: never one per unit
    assert n_calls == 1 + 1 + 1
    assert sum(calls[:n_calls]) == 1 + 3 + 3 * GRID * GRID


@pytest.mark.parametrize("kind", ["prob", "logit"])
def test_other_scores(kind):
    toy = Toy(lambda x: unit_sum(x, 2))  # linear: additive for logit; prob = sigmoid is not
    x = torch.rand(2, 3, SIZE, SIZE)
    res = interaction(toy, x, torch.zeros(3, SIZE, SIZE), grid=GRID, score=kind)
    if kind == "logit":
        assert res["I"].abs().max() < 1e-5
    else:
        s = torch.sigmoid(unit_sum(x, 2)).double()
        # only unit 2 matters: f(N) = f({2}) = s, the 15 others score f(empty) = 0.5
        assert torch.allclose(res["f_full"], s, atol=1e-6)
        assert res["I"].abs().max() < 1e-5
