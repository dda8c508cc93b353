"""Figure of MFS + DA on a batch read from a frame store.

    python -m iid.augment.show store=<store_root>/<dataset>/<split> out=fig.png [n=6] [seed=0]  (conf/show.yaml)

One row per fake frame with a source: fake, source, face-restricted DSSIM, the chosen window (or the
global hull), the MFS result with its artifact box (centred crop, no DA), and the sample after DA
with its box. The first half of the rows is drawn with partial swaps, the rest with global swaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iid.augment.pipeline import build_train_transform
from iid.errors import UserError
from iid.reporting.figures import draw_box, pyplot, save_grid
from iid.settings import bounds, settings

COLUMNS = ("fake", "source", "DSSIM (face)", "window / hull", "MFS + box", "after DA + box")


@dataclass(frozen=True)
class ShowArgs:
    store: str = "???"
    out: str = "mfs_grid.png"
    n: int = field(default=6, metadata=bounds(1))
    seed: int = 0


def open_store(path: str | Path):
    """FrameStore for `<root>/<dataset>/<split>`."""
    from iid.data.store import FrameStore

    p = Path(path)
    if not p.is_dir():
        raise UserError(f"store={p}: no such folder; give <store_root>/<dataset>/<split> written by iid.prepare")
    return FrameStore(p.parent.parent, p.parent.name, p.name)


def load_batch(store, n: int, seed: int) -> dict[str, torch.Tensor]:
    """n fake rows with a source, at random (seeded), as a DataModule batch (docs/interfaces.md)."""
    rows = np.flatnonzero((store.label == 1) & store.has_source)
    if len(rows) == 0:
        raise UserError(f"{store.path}: no fake frames with a source frame to show")
    return read_rows(store, np.random.default_rng(seed).choice(rows, size=min(n, len(rows)), replace=False))


def read_rows(store, rows: np.ndarray) -> dict[str, torch.Tensor]:
    """Rows of a frame store as a DataModule batch (docs/interfaces.md) for a figure."""
    np_batch = store.read_batch(rows)
    return {
        "image": torch.from_numpy(np.ascontiguousarray(np_batch["image"].transpose(0, 3, 1, 2))),
        "source": torch.from_numpy(np.ascontiguousarray(np_batch["source"].transpose(0, 3, 1, 2))),
        "face_mask": torch.from_numpy(np.ascontiguousarray(np_batch["face_mask"]))[:, None],
        "landmarks": torch.from_numpy(np.asarray(np_batch["landmarks"], dtype=np.float32)),
        "label": torch.from_numpy(np_batch["label"]),
        "has_source": torch.from_numpy(np_batch["has_source"]),
    }


def render(batch: dict[str, torch.Tensor], out: Path, seed: int = 0) -> Path:
    """Run MFS (+ DA) on batch and write the figure to out (PNG)."""
    plt = pyplot()

    b = batch["label"].shape[0]
    half = (b + 1) // 2
    parts = [slice(0, half), slice(half, b)]
    mfs_cfgs = [{"p_global": 0.0}, {"p_global": 1.0, "p_keep": 0.0, "p_source_into_fake": 0.5,
                                     "p_fake_into_source": 0.5}]
    rows = []
    for sl, mfs in zip(parts, mfs_cfgs):
        sub = {k: v[sl] for k, v in batch.items()}
        if sub["label"].numel() == 0:
            continue
        # same seed: the MFS draws come first, so both runs make the same swap; only DA differs
        plain = build_train_transform(mfs, {"enabled": False}, seed=seed)(sub, keep_dssim=True)
        aug = build_train_transform(mfs, {}, seed=seed)(sub)
        rows.append((sub, plain, aug))
    s = batch["image"].shape[-1]
    o = (s - 224) // 2
    fig, axes = plt.subplots(b, len(COLUMNS), figsize=(2.0 * len(COLUMNS), 2.0 * b), squeeze=False)
    r = 0
    for sub, plain, aug in rows:
        for i in range(sub["label"].shape[0]):
            ax = axes[r]
            crop = (slice(o, o + 224), slice(o, o + 224))
            ax[0].imshow(sub["image"][i].permute(1, 2, 0).numpy()[crop])
            ax[1].imshow(sub["source"][i].permute(1, 2, 0).numpy()[crop])
            if "dssim" in plain:
                ax[2].imshow(plain["dssim"][i, 0].numpy()[crop], cmap="magma", vmin=0)
            else:  # global rows: DSSIM for reference, computed on the fly
                from iid.augment.ssim import dssim_map

                d = dssim_map(sub["image"][i : i + 1].float() / 255, sub["source"][i : i + 1].float() / 255)
                ax[2].imshow((d.mean(1)[0] * sub["face_mask"][i, 0]).numpy()[crop], cmap="magma", vmin=0)
            ax[3].imshow(sub["image"][i].permute(1, 2, 0).numpy()[crop])
            kind = int(plain["mfs_kind"][i])
            if kind == 5:
                draw_box(ax[3], plain["mfs_box_canvas"][i] - o, "cyan")
            else:
                ax[3].contour(plain["swap_mask"][i, 0].numpy(), levels=[0.5], colors="cyan", linewidths=1)
            ax[4].imshow(plain["image"][i].permute(1, 2, 0).numpy())
            draw_box(ax[4], plain["boxes"][i] * 224, "lime")
            ax[5].imshow(aug["image"][i].permute(1, 2, 0).numpy())
            draw_box(ax[5], aug["boxes"][i] * 224, "lime")
            from iid.augment.mfs import KIND_NAMES

            ax[0].set_ylabel(KIND_NAMES[kind], fontsize=8)
            r += 1
    return save_grid(fig, axes, out, COLUMNS)


def show(cfg: Any) -> Path:
    a = settings(ShowArgs, "show", cfg)
    out = render(load_batch(open_store(a.store), a.n, a.seed), Path(a.out), a.seed)
    print(f"wrote {out}")
    return out


def main(argv: list[str] | None = None) -> None:
    from iid.engine.cli import hydra_entry

    hydra_entry("show", show, argv)


if __name__ == "__main__":
    main()
