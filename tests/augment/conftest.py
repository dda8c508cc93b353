"""Fabricated batches in the docs/interfaces.md layout (no store, no download)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F


def make_batch(b: int = 6, s: int = 256, seed: int = 0, fakes: list[int] | None = None) -> dict:
    """Smooth random canvases; fakes = source re-textured inside an elliptic face hull."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    face = ((((xx - s / 2) / (0.27 * s)) ** 2 + ((yy - 0.53 * s) / (0.35 * s)) ** 2) < 1).to(torch.uint8)
    base = F.interpolate(torch.rand(b, 3, s // 16, s // 16, generator=g), size=(s, s), mode="bicubic").clamp(0, 1)
    detail = F.interpolate(torch.rand(b, 3, s // 4, s // 4, generator=g), size=(s, s), mode="bilinear")
    fake = base * (1 - face) + (0.6 * base + 0.4 * detail) * face
    label = torch.tensor(fakes if fakes is not None else [i % 2 for i in range(b)], dtype=torch.long)
    t = torch.linspace(0, 2 * torch.pi, 69)[:-1]
    lm = torch.stack([s / 2 + 0.2 * s * torch.cos(t), 0.5 * s + 0.3 * s * torch.sin(t)], 1)
    lm = lm + torch.rand(b, 68, 2, generator=g)
    return {
        "image": (fake * 255).round().to(torch.uint8),
        "source": (base * 255).round().to(torch.uint8) * label.bool().view(b, 1, 1, 1),
        "has_source": label.bool(),
        "face_mask": face.expand(b, 1, s, s).clone(),
        "landmarks": lm,
        "label": label,
        "identity": torch.zeros(b, dtype=torch.long),
        "video": torch.arange(b),
        "frame": torch.arange(b),
    }


@pytest.fixture
def batch() -> dict:
    return make_batch()
