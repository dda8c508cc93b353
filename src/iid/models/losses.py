"""Criteria of the paper's families: the ADM's SSD multibox loss and the detector's total loss
(paper §4.3, supplement §D), and the binary classifier's cross-entropy.

Every criterion is called as `criterion(output: ModelOutput, batch) -> dict` holding `loss` and
detached parts to log.

L = L_cls + beta * (L_conf + alpha * L_loc) / N, N = positive anchors in the batch.

Hard-negative mining (2 negatives per positive, ranked by their confidence loss):
- mining="image" (default, the reference): each image mines 2x its own positives, so a real image
  (no artifact box, no positive) contributes no anchor at all to L_conf;
- mining="batch": 2x the batch's positives are mined from all negatives of the batch, so genuine
  anchors of real images can serve as hard negatives.
Each image mines at most its K - n_pos negatives (the reference clamps at K - 1 and lets the mined set
overlap the positives; the two agree whenever 3 * n_pos <= K, i.e. always with one box per image).
A batch with no positive anchor (only real images) mines nothing in either mode: its detection
term is exactly 0, yet stays in the autograd graph (masks multiply, nothing is indexed away), so
DDP sees every ADM parameter used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from iid.models.anchors import VARIANCES, default_anchors, match
from iid.models.output import ModelOutput

MINING_MODES = ("image", "batch")


class MultiBoxResult(NamedTuple):
    conf: Tensor  # () summed cross-entropy over positive and mined negative anchors
    loc: Tensor  # () summed Smooth L1 over the 4 offsets of positive anchors
    num_pos: Tensor  # () int64 positive anchors in the batch
    num_neg: Tensor  # () int64 mined negative anchors in the batch


class MultiBoxLoss(nn.Module):
    def __init__(
        self,
        anchors: Tensor | None = None,
        threshold: float = 0.5,
        force_best: bool = True,
        neg_pos_ratio: float = 2.0,
        variances: tuple[float, float] = VARIANCES,
        mining: str = "image",
    ) -> None:
        super().__init__()
        if mining not in MINING_MODES:
            raise ValueError(f"mining must be one of {MINING_MODES}, got {mining!r}")
        # deterministic from the code: not part of checkpoints
        self.register_buffer(
            "anchors", default_anchors() if anchors is None else anchors.float(), persistent=False
        )
        self.threshold = float(threshold)
        self.force_best = bool(force_best)
        self.neg_pos_ratio = float(neg_pos_ratio)
        self.variances = (float(variances[0]), float(variances[1]))
        self.mining = mining

    def targets(self, boxes: Tensor, has_box: Tensor) -> tuple[Tensor, Tensor]:
        """(loc_targets (B, K, 4), labels (B, K)) for artifact boxes (B, 4) x0y0x1y1."""
        anchors = self.anchors.to(boxes.device)  # no-op when the loss lives on the batch's device
        return match(boxes.float(), has_box, anchors, self.threshold, self.force_best, self.variances)

    def forward(self, loc: Tensor, conf: Tensor, boxes: Tensor, has_box: Tensor) -> MultiBoxResult:
        """loc (B, K, 4), conf (B, K, 2) predictions; boxes (B, 4) x0y0x1y1 in [0, 1]; has_box (B,)."""
        loc_t, labels = self.targets(boxes, has_box)  # (B, K, 4), (B, K)
        pos = labels.bool()
        b, k = labels.shape
        ce = F.cross_entropy(conf.float().reshape(b * k, -1), labels.reshape(-1), reduction="none").view(b, k)
        neg = self._mine(ce.detach(), pos)
        conf_sum = (ce * (pos | neg)).sum()
        loc_l1 = F.smooth_l1_loss(loc.float(), loc_t, reduction="none", beta=1.0).sum(-1)  # (B, K)
        loc_sum = (loc_l1 * pos).sum()
        return MultiBoxResult(conf=conf_sum, loc=loc_sum, num_pos=pos.sum(), num_neg=neg.sum())

    def _mine(self, ce: Tensor, pos: Tensor) -> Tensor:
        """Hard negatives (B, K) bool: the highest-loss background anchors, ratio x positives."""
        score = ce.masked_fill(pos, float("-inf"))  # positives rank last, never mined
        if self.mining == "image":
            n_pos = pos.sum(1, keepdim=True)  # (B, 1)
            n_neg = torch.minimum((self.neg_pos_ratio * n_pos).long(), pos.shape[1] - n_pos)
            rank = score.argsort(1, descending=True).argsort(1)  # (B, K) 0 = hardest
            return rank < n_neg
        flat = score.reshape(-1)
        n_pos = pos.sum()
        n_neg = torch.minimum((self.neg_pos_ratio * n_pos).long(), pos.numel() - n_pos)
        rank = flat.argsort(descending=True).argsort()
        return (rank < n_neg).view_as(pos)


class ClassificationLoss(nn.Module):
    """The binary classifier's criterion: cross-entropy of the image logits."""

    def forward(self, output: ModelOutput, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        cls = F.cross_entropy(output.logits.float(), batch["label"])
        return {"loss": cls, "cls": cls.detach()}


class DetectorLoss(nn.Module):
    """Total loss of the ID-unaware detector: cross-entropy + beta * the ADM's multibox loss."""

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 0.1,
        threshold: float = 0.5,
        force_best: bool = True,
        neg_pos_ratio: float = 2.0,
        variances: tuple[float, float] = VARIANCES,
        mining: str = "image",
        anchors: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.alpha, self.beta = float(alpha), float(beta)
        self.multibox = MultiBoxLoss(anchors, threshold, force_best, neg_pos_ratio, variances, mining)

    def forward(self, output: ModelOutput, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """output: ModelOutput with extras `loc`, `conf`; batch: `label` (B,) 0 real / 1 fake, and the
        train transform's artifact `boxes` (B, 4) x0y0x1y1 in [0, 1] and `has_box` (B,).

        Returns `loss` (backprop this) and detached parts for logging: `cls`, `det` (the term beta
        multiplies), `conf` and `loc` (per positive anchor), `num_pos`, `num_neg`.
        """
        labels = batch["label"]
        cls = F.cross_entropy(output.logits.float(), labels)
        if "loc" not in output.extras or batch.get("boxes") is None or batch.get("has_box") is None:
            raise ValueError("the ADM loss needs the ADM's loc/conf outputs and the batch's boxes/has_box")
        mb = self.multibox(output.extras["loc"], output.extras["conf"], batch["boxes"], batch["has_box"])
        n = mb.num_pos.clamp(min=1).float()  # N = 0 only when nothing is mined: sums are 0 then
        det = (mb.conf + self.alpha * mb.loc) / n
        return {
            "loss": cls + self.beta * det,
            "cls": cls.detach(),
            "det": det.detach(),
            "conf": (mb.conf / n).detach(),
            "loc": (mb.loc / n).detach(),
            "num_pos": mb.num_pos.detach().float(),
            "num_neg": mb.num_neg.detach().float(),
        }
