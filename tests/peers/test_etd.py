"""Exposing the Deception: its losses on hand-computed inputs, its network through the family seam."""

from __future__ import annotations

import math

import pytest
import torch

from iid.errors import UserError
from iid.models.families import build_family, check_model
from iid.models.losses_etd import (
    ETDLoss,
    UncertaintyWeights,
    global_information_loss,
    local_information_loss,
    tempered_kl,
)
from iid.models.output import ModelOutput


def softmax(v, t):
    e = [math.exp(x / t) for x in v]
    return [x / sum(e) for x in e]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q))


# -- the loss functions, by hand ---------------------------------------------------------------------
def test_tempered_kl_directions_match_hand_computation():
    z, g = [0.3, 2.1], [1.0, -0.5]
    pz, pg = softmax(z, 1.5), softmax(g, 1.5)
    tz, tg = torch.tensor([z]), torch.tensor([g])
    assert tempered_kl(tz, tg, 1.5, "paper").item() == pytest.approx(kl(pz, pg), rel=1e-5)
    assert tempered_kl(tz, tg, 1.5, "reference").item() == pytest.approx(kl(pg, pz), rel=1e-5)
    assert global_information_loss(tz, tg, 1.5).item() == pytest.approx(kl(pz, pg), rel=1e-5)
    assert kl(pz, pg) != pytest.approx(kl(pg, pz), rel=1e-3)  # the direction matters on this input


def test_lil_hand_value_and_range():
    # n = 3 blocks, 2 samples: P_Z and the three leave-one-out predictions
    z = [[0.0, 3.0], [1.0, -1.0]]
    minus = [[[0.0, 2.0], [0.0, 2.0], [0.5, 0.5]], [[1.0, -1.0], [0.0, 0.0], [2.0, -2.0]]]
    expect_sum = sum(kl(softmax(z[b], 1.5), softmax(minus[b][i], 1.5)) for i in range(3) for b in range(2)) / 2
    lil, total = local_information_loss(torch.tensor(z), torch.tensor(minus), 1.5)
    assert total.item() == pytest.approx(expect_sum, rel=1e-5)
    assert lil.item() == pytest.approx(math.exp(-expect_sum), rel=1e-5)
    assert 0 < lil.item() < 1


def _features_and_heads(n: int, evidence: torch.Tensor):
    """Local features z_i = evidence[:, i] * u (B, n, C) and a head pair with consistent weights: P_Z
    reads the mean of the n blocks' evidence, each P_{Z\\z_i} the mean of the other n-1."""
    c = 8
    u = torch.zeros(c)
    u[0] = 1.0
    z = evidence[:, :, None] * u  # (B, n, C)
    w = torch.stack([-u, u])  # (2, C): logit_fake - logit_real = 2 * evidence
    logits_z = torch.einsum("bnc,kc->bk", z, w) / n
    logits_minus = torch.stack(
        [torch.einsum("bnc,kc->bk", torch.cat([z[:, :i], z[:, i + 1 :]], 1), w) / (n - 1) for i in range(n)], 1
    )
    return logits_z, logits_minus


@pytest.mark.parametrize("scale", [0.5, 2.0, 8.0])
def test_identical_local_features_give_lil_its_maximum(scale):
    e = torch.randn(16, 1) * scale
    lz, lm = _features_and_heads(4, e.expand(16, 4))  # every block sees the same evidence
    lil, total = local_information_loss(lz, lm, 1.5)
    assert total.item() == pytest.approx(0.0, abs=1e-6)
    assert lil.item() == pytest.approx(1.0, abs=1e-6)  # the maximum of (0, 1]


def test_independent_local_features_drive_lil_to_its_minimum():
    g = torch.Generator().manual_seed(0)
    e = torch.randn(64, 4, generator=g)  # each block carries its own, independent evidence
    values = [local_information_loss(*_features_and_heads(4, e * s), 1.5)[0].item() for s in (0.5, 2, 8, 64)]
    assert all(a > b for a, b in zip(values, values[1:]))  # falls as the evidence the others lack grows
    assert values[0] < 1 and values[-1] < 1e-3  # towards its infimum 0
    same = local_information_loss(*_features_and_heads(4, e[:, :1].expand(64, 4) * 8), 1.5)[0].item()
    assert same == pytest.approx(1.0, abs=1e-6) and values[2] < same


def test_uncertainty_weights_follow_their_closed_form_gradient():
    losses = [torch.tensor(0.3), torch.tensor(2.5), torch.tensor(0.02)]
    w = UncertaintyWeights(["ce", "lil", "gil"])
    with torch.no_grad():
        w.sigma.copy_(torch.tensor([0.7, 1.3, 2.0]))
    total = w(losses)
    total.backward()
    s = w.sigma.detach()
    expect = torch.stack([-L / s[i] ** 3 + 2 * s[i] / (1 + s[i] ** 2) for i, L in enumerate(losses)])
    assert torch.allclose(w.sigma.grad, expect, rtol=1e-5)
    expect_total = sum(L / (2 * s[i] ** 2) + math.log(1 + s[i] ** 2) for i, L in enumerate(losses))
    assert total.item() == pytest.approx(float(expect_total), rel=1e-6)
    # gradient descent on sigma alone reaches the stationary point sigma^2 = (L + sqrt(L^2 + 8L)) / 4
    opt = torch.optim.SGD(w.parameters(), lr=0.05)
    for _ in range(4000):
        opt.zero_grad()
        w(losses).backward()
        opt.step()
    for i, L in enumerate(losses):
        L = float(L)
        assert w.sigma[i].item() ** 2 == pytest.approx((L + math.sqrt(L * L + 8 * L)) / 4, rel=1e-3)


def _output(b=4, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ModelOutput(torch.randn(b, 2, generator=g, requires_grad=True), torch.randn(b, 8, generator=g),
                       {"logits_z": torch.randn(b, 2, generator=g, requires_grad=True),
                        "logits_minus": torch.randn(b, n, 2, generator=g, requires_grad=True)})  # fmt: skip


def test_criterion_terms_weights_and_detached_target():
    out = _output()
    y = torch.tensor([0, 1, 1, 0])
    crit = ETDLoss(weighting="fixed", alpha=10, beta=2)
    parts = crit(out, {"label": y})
    ce = (torch.nn.functional.cross_entropy(out.logits, y) + torch.nn.functional.cross_entropy(out.extras["logits_z"], y)
          + sum(torch.nn.functional.cross_entropy(out.extras["logits_minus"][:, i], y) for i in range(3)))
    lil, _ = local_information_loss(out.extras["logits_z"], out.extras["logits_minus"], 1.5)
    gil = global_information_loss(out.extras["logits_z"], out.logits, 1.5)
    assert parts["loss"].item() == pytest.approx((ce + 10 * lil + 2 * gil).item(), rel=1e-5)
    assert {"cls", "ce", "lil", "gil", "kl_local", "w_ce", "w_lil", "w_gil"} <= set(parts)
    # P_Z is a target: the information losses send it no gradient unless detach_target=False
    z = out.extras["logits_z"]
    (g,) = torch.autograd.grad(lil + gil, z, allow_unused=True)
    assert g is None
    free = local_information_loss(z, out.extras["logits_minus"], 1.5, detach_target=False)[0]
    assert torch.count_nonzero(torch.autograd.grad(free, z)[0]) > 0


def test_ablations_drop_their_terms_and_heads():
    net, crit = build_family({"family": "etd", "blocks": 2, "lil": False, "gil": False, "fusion": [16]},
                             {"name": "resnet18"})  # fmt: skip
    assert net.head_z is None and net.head_minus is None and crit.terms == ("ce",)
    out = net(torch.randn(2, 3, 64, 64))
    parts = crit(out, {"label": torch.tensor([0, 1])})
    assert set(parts) == {"loss", "cls", "ce", "w_ce"}
    net, crit = build_family({"family": "etd", "blocks": 2, "gil": False, "fusion": [16]}, {"name": "resnet18"})
    assert net.head_z is not None and net.head_minus is not None and crit.terms == ("ce", "lil")


# -- the network ------------------------------------------------------------------------------------------
def test_network_shapes_and_the_seam():
    net, crit = build_family({"family": "etd", "blocks": 3}, {"name": "resnet18", "pretrained": False})
    assert len(net.blocks) == 3 and net.num_features == 512 and net.mean == net.blocks[0].mean
    assert len({id(b) for b in net.blocks}) == 3  # n separate blocks, not one shared
    x = torch.randn(2, 3, 224, 224)
    maps = net.forward_features(x)
    assert maps.shape == (2, 3, 512, 7, 7)
    out = net(x)
    assert out.logits.shape == (2, 2) and out.features.shape == (2, 512)
    assert out.extras["local"].shape == (2, 3, 512) and out.extras["logits_minus"].shape == (2, 3, 2)
    assert torch.allclose(out.extras["local"], maps.mean((-2, -1)))


def test_leave_one_out_heads_ignore_the_left_out_block():
    net, _ = build_family({"family": "etd", "blocks": 3, "fusion": [16]}, {"name": "resnet18"})
    net.eval()
    maps = torch.randn(2, 3, 512, 2, 2)
    changed = maps.clone()
    changed[:, 1] += 5.0  # only block 2's map moves
    a, b = net.forward_head(maps).extras, net.forward_head(changed).extras
    assert torch.allclose(a["logits_minus"][:, 1], b["logits_minus"][:, 1], atol=1e-5)  # head 2 never sees z_2
    assert not torch.allclose(a["logits_minus"][:, 0], b["logits_minus"][:, 0])
    assert not torch.allclose(a["logits_z"], b["logits_z"])


def test_block_backbone_comes_from_the_backbone_group():
    net, _ = build_family({"family": "etd", "blocks": 2, "fusion": [16], "global_dim": 32}, {"name": "resnet50"})
    assert all(b.name == "resnet50" for b in net.blocks) and net.block_width == 2048 and net.num_features == 32


@pytest.mark.parametrize("bad, match", [({"blocks": 1}, "blocks"), ({"kl_direction": "up"}, "kl_direction"),
                                        ({"temperature": 0}, "temperature"), ({"weighting": "auto"}, "weighting"),
                                        ({"block": 4}, "unknown key")])  # fmt: skip
def test_bad_options_are_one_line_user_errors(bad, match):
    with pytest.raises(UserError, match=match) as err:
        check_model({"family": "etd", **bad})
    assert "\n" not in str(err.value)


def test_the_lightning_module_trains_the_uncertainty_weights(compose_cfg):
    from iid.engine.config import plain_config
    from iid.module import DetectorModule

    cfg = plain_config(compose_cfg(["model=etd", "backbone=resnet18", "model.blocks=2", "model.fusion=[16]"]))
    m = DetectorModule(cfg)
    sigma = m.criterion.uncertainty.sigma
    assert any(p is sigma for p in m.parameters())
    opt = m.configure_optimizers()["optimizer"]
    assert any(p is sigma for group in opt.param_groups for p in group["params"])
    out = m.model(torch.randn(2, 3, 64, 64))
    m.criterion(out, {"label": torch.tensor([0, 1])})["loss"].backward()
    before = sigma.detach().clone()
    opt.step()
    assert not torch.equal(before, sigma.detach())
