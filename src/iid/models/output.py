"""The one output type of every detector family.

`logits` and `features` are what the suite and every analysis read: the image-level logits (class 1
= fake) and the pooled feature the final linear layer sees (the ID linear probe, t-SNE and overlap
analyses take this). `extras` holds what only one family's criterion or analysis needs, e.g. the
ADM's per-anchor `loc` (B, 168, 4) and `conf` (B, 168, 2), or a peer's local features.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class ModelOutput(NamedTuple):
    logits: Tensor  # (B, num_classes) image level: 0 real, 1 fake
    features: Tensor  # (B, C) input of the final linear layer
    extras: dict[str, Tensor] = {}  # family-specific outputs (never mutated: a fresh dict per forward)
