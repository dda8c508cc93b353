"""The SBI figure: python -m iid.augment.sbi_show store=<store_root>/<dataset>/<split> out=fig.png [n=6] [seed=0]

One row per real frame of the store (seeded choice): the frame, the jittered and moved source, the
warped hull over the blend mask, the pseudo-fake with its artifact box, and the train transform's
output (DA on) with the warped box.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from iid.augment.config import sbi_config
from iid.augment.sbi import SelfBlend
from iid.errors import UserError
from iid.settings import settings

COLUMNS = ("real frame", "source (jittered, moved)", "hull warped + blend mask", "pseudo-fake + box",
           "after DA + box")  # fmt: skip


def load_real_batch(store: Any, n: int, seed: int) -> dict[str, Tensor]:
    """n real rows of a frame store at random (seeded), as a DataModule batch (docs/interfaces.md)."""
    import numpy as np

    rows = np.flatnonzero(store.label == 0)
    if len(rows) == 0:
        raise UserError(f"{store.path}: no real frames to self-blend")
    from iid.augment.show import read_rows

    return read_rows(store, np.sort(np.random.default_rng(seed).choice(rows, size=min(n, len(rows)), replace=False)))


def render(batch: dict[str, Tensor], out: Path, seed: int = 0, node: Any = None) -> Path:
    """Self-blend every row of a batch of real frames (SBI's defaults, or the `sbi` node given) and draw
    one row per frame: the frame, the moved source, the warped hull (contour) over the blend mask, the
    pseudo-fake with its artifact box, and the train transform's output (DA on) with the warped box."""
    from iid.reporting.figures import draw_box, pyplot, save_grid

    plt = pyplot()

    from iid.augment.pipeline import build_train_transform
    from iid.settings import plain

    cfg = sbi_config({**plain(node), "fake_share": 1.0, "paired": False, "enabled": True})
    stage = SelfBlend(cfg, seed)
    b, _, s, _ = batch["image"].shape
    res = stage.blend(batch["image"], batch["face_mask"], stage.generator(batch["image"].device), keep=True)
    fake = dict(batch, image=res.fake, label=torch.ones(b, dtype=torch.long), has_source=torch.zeros(b, dtype=torch.bool),
                artifact_box_canvas=res.box, has_artifact_box=res.ok)  # fmt: skip
    aug = build_train_transform({"enabled": False}, {}, seed=seed)(fake)
    o = (s - 224) // 2
    crop = (slice(o, o + 224), slice(o, o + 224))

    fig, axes = plt.subplots(b, len(COLUMNS), figsize=(2.0 * len(COLUMNS), 2.0 * b), squeeze=False)
    for i in range(b):
        ax = axes[i]
        ax[0].imshow(batch["image"][i].permute(1, 2, 0).numpy()[crop])
        ax[1].imshow((res.source[i].permute(1, 2, 0).numpy() / 255).clip(0, 1)[crop])
        ax[2].imshow(res.weight[i].numpy()[crop], cmap="gray", vmin=0, vmax=1)
        ax[2].contour(res.mask[i].numpy()[crop], levels=[0.5], colors="cyan", linewidths=1)
        ax[3].imshow(res.fake[i].permute(1, 2, 0).numpy()[crop])
        if bool(res.ok[i]):
            draw_box(ax[3], res.box[i] - o, "lime")
        ax[4].imshow(aug["image"][i].permute(1, 2, 0).numpy().clip(0, 1))
        if bool(aug["has_box"][i]):
            draw_box(ax[4], aug["boxes"][i] * 224, "lime")
        ax[0].set_ylabel(f"ratio {float(res.weight[i].max()):.2f}", fontsize=8)
    return save_grid(fig, axes, out, COLUMNS)


def show(cfg: Any) -> Path:
    from iid.augment.show import ShowArgs, open_store

    a = settings(ShowArgs, "sbi_show", cfg)  # the MFS figure's arguments: store, out, n, seed
    out = render(load_real_batch(open_store(a.store), a.n, a.seed), Path(a.out), a.seed)
    print(f"wrote {out}")
    return out


def main(argv: list[str] | None = None) -> None:
    from iid.engine.cli import hydra_entry

    hydra_entry("sbi_show", show, argv)


if __name__ == "__main__":
    main()
