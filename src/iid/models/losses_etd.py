"""Criterion of the Exposing-the-Deception family (Ba et al., AAAI 2024): cross-entropy, the Local
Information Loss, the Global Information Loss, and their weighting. The formulas, their equation
numbers and the constants the paper leaves open are stated in iid.models.etd's docstring; this
module implements them:

    L_LIL = exp(-sum_i E_x KL_T[P_Z || P_{Z\\z_i}])                 (Eq. 8 / 23)
    L_GIL = E_x KL_T[P_Z || P_G]                                    (Eq. 12)
    L     = L_CE + alpha L_LIL + beta L_GIL                         (Eq. 13)

with KL_T the KL divergence of temperature-T softmaxes, P_Z detached (a target), and alpha, beta
either fixed or learned by uncertainty weighting (Liebel & Koerner 2018):

    L = sum_k [ L_k / (2 sigma_k^2) + ln(1 + sigma_k^2) ],  k in {CE, LIL, GIL}, sigma_k init 1.

Everything returned besides `loss` is detached, for logging.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from iid.models.output import ModelOutput

KL_DIRECTIONS = ("paper", "reference")
WEIGHTINGS = ("learned", "fixed")


def tempered_kl(target_logits: Tensor, other_logits: Tensor, temperature: float, direction: str = "paper",
                detach_target: bool = True) -> Tensor:
    """Per-sample KL divergence (..., B) between softmax(target/T) and softmax(other/T) over the last dim.

    direction "paper": KL[P_target || P_other] (Eq. 8 and 12 write D_KL[P_Z || .]);
    direction "reference": KL[P_other || P_target] (what the official code's nn.KLDivLoss(log P_Z, P_other)
    computes). The target is detached unless detach_target=False.
    """
    if detach_target:
        target_logits = target_logits.detach()
    log_t = F.log_softmax(target_logits.float() / temperature, -1)
    log_o = F.log_softmax(other_logits.float() / temperature, -1)
    if direction == "paper":
        return (log_t.exp() * (log_t - log_o)).sum(-1)
    if direction == "reference":
        return (log_o.exp() * (log_o - log_t)).sum(-1)
    raise ValueError(f"direction must be one of {KL_DIRECTIONS}, got {direction!r}")


def local_information_loss(logits_z: Tensor, logits_minus: Tensor, temperature: float, direction: str = "paper",
                           detach_target: bool = True) -> tuple[Tensor, Tensor]:
    """(L_LIL, sum_i E_x KL_i) from P_Z logits (B, 2) and the leave-one-out logits (B, n, 2) (Eq. 8).

    L_LIL = 1 (its maximum) when every P_{Z\\z_i} equals P_Z: removing any one local feature changes
    nothing, i.e. the local features are redundant; it falls towards 0 as each z_i carries label
    information the others lack.
    """
    kl = tempered_kl(logits_z.unsqueeze(1), logits_minus, temperature, direction, detach_target)  # (B, n)
    total = kl.mean(0).sum()  # expectation over the batch, sum over the n blocks
    return torch.exp(-total), total


def global_information_loss(logits_z: Tensor, logits_g: Tensor, temperature: float, direction: str = "paper",
                            detach_target: bool = True) -> Tensor:
    """L_GIL = E_x KL_T[P_Z || P_G] (Eq. 12), logits (B, 2) each."""
    return tempered_kl(logits_z, logits_g, temperature, direction, detach_target).mean()


class UncertaintyWeights(nn.Module):
    """Liebel & Koerner (2018): sum_k L_k / (2 sigma_k^2) + ln(1 + sigma_k^2), sigma_k learned (init 1).

    d/d sigma_k = -L_k / sigma_k^3 + 2 sigma_k / (1 + sigma_k^2); for a constant L_k > 0 its minimum
    is at sigma_k^2 = (L_k + sqrt(L_k^2 + 8 L_k)) / 4. The ln(1 + sigma^2) regulariser (instead of
    Kendall et al.'s ln sigma) keeps the total loss non-negative.
    """

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        self.names = tuple(names)
        self.sigma = nn.Parameter(torch.ones(len(self.names)))

    def weights(self) -> Tensor:
        return 0.5 / self.sigma.float() ** 2

    def forward(self, losses: Sequence[Tensor]) -> Tensor:
        s2 = self.sigma.float() ** 2
        return sum(0.5 / s2[i] * loss + torch.log1p(s2[i]) for i, loss in enumerate(losses))


class ETDLoss(nn.Module):
    """criterion(output, batch) -> {"loss", parts...} of the ETD network (iid.models.etd.ETDNet).

    Reads `output.logits` (P_G's logits) and, when the information losses are on, the extras
    `logits_z` (B, 2) and `logits_minus` (B, n, 2). The CE term is the sum of the cross-entropies of
    every classifier used: P_G, P_Z (when either information loss is on) and each P_{Z\\z_i} (with
    L_LIL): those variational classifiers are what make P_Z and P_{Z\\z_i} predictive distributions.
    """

    def __init__(self, lil: bool = True, gil: bool = True, temperature: float = 1.5, kl_direction: str = "paper",
                 detach_target: bool = True, weighting: str = "learned", alpha: float = 10.0,
                 beta: float = 2.0) -> None:
        super().__init__()
        if kl_direction not in KL_DIRECTIONS:
            raise ValueError(f"kl_direction must be one of {KL_DIRECTIONS}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}")
        self.lil, self.gil = bool(lil), bool(gil)
        self.temperature = float(temperature)
        self.kl_direction = kl_direction
        self.detach_target = bool(detach_target)
        self.weighting = weighting
        self.alpha, self.beta = float(alpha), float(beta)
        self.terms = ("ce",) + (("lil",) if self.lil else ()) + (("gil",) if self.gil else ())
        self.uncertainty = UncertaintyWeights(self.terms) if weighting == "learned" else None

    def fixed_weights(self) -> dict[str, float]:
        return {"ce": 1.0, "lil": self.alpha, "gil": self.beta}

    def forward(self, output: ModelOutput, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        y = batch["label"]
        cls = F.cross_entropy(output.logits.float(), y)
        ce = cls
        values: dict[str, Tensor] = {}
        parts: dict[str, Tensor] = {"cls": cls.detach()}
        if self.lil or self.gil:
            z = output.extras["logits_z"]
            ce = ce + F.cross_entropy(z.float(), y)
        if self.lil:
            minus = output.extras["logits_minus"]  # (B, n, 2)
            b, n, c = minus.shape
            ce = ce + F.cross_entropy(minus.float().reshape(b * n, c), y.repeat_interleave(n), reduction="sum") / b
            values["lil"], kl_sum = local_information_loss(z, minus, self.temperature, self.kl_direction,
                                                           self.detach_target)
            parts["kl_local"] = kl_sum.detach()
        if self.gil:
            values["gil"] = global_information_loss(z, output.logits, self.temperature, self.kl_direction,
                                                    self.detach_target)
        values["ce"] = ce
        losses = [values[k] for k in self.terms]
        if self.uncertainty is not None:
            loss = self.uncertainty(losses)
            w = self.uncertainty.weights().detach()
            weights = {k: w[i] for i, k in enumerate(self.terms)}
        else:
            fixed = self.fixed_weights()
            loss = sum(fixed[k] * v for k, v in zip(self.terms, losses))
            weights = {k: torch.tensor(fixed[k]) for k in self.terms}
        out = {"loss": loss, **parts}
        for k in self.terms:
            out[k] = values[k].detach()
            out[f"w_{k}"] = weights[k]
        return out
