"""Grad-CAM of every local information block of a trained ETD network (the paper's Fig. 4 and 7).

    python -m iid.models.etd_cam ckpt=<run>/checkpoints/best.ckpt store=<store_root>/<dataset>/<split> \
        out=fig.png [n=4] [seed=0]                                                      (conf/etd_cam.yaml)

For block i, the class-1 (fake) logit of the final classifier on G is differentiated with respect to
the block's last map A_i (C x h x w); the map is relu(sum_c mean_hw(dlogit/dA_i,c) A_i,c) (Selvaraju
et al. 2017), upsampled to the input. The n maps of a face share one scale (the face's largest value),
so a block that sees little shows as dim, as in the paper's comparison without L_LIL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from iid.errors import UserError
from iid.settings import bounds, settings


@dataclass(frozen=True)
class CamArgs:
    ckpt: str = "???"
    store: str = "???"
    out: str = "etd_gradcam.png"
    n: int = field(default=4, metadata=bounds(1))
    seed: int = 0


def block_grad_cam(net: torch.nn.Module, x: Tensor, target: int = 1) -> tuple[Tensor, Tensor]:
    """(maps (B, n, H, W) in [0, 1], one scale per face; logits (B, 2)) for input x (B, 3, H, W) normalised."""
    was_training = net.training
    net.eval()
    try:
        with torch.enable_grad():
            maps = net.forward_features(x).detach().requires_grad_(True)  # (B, n, C, h, w)
            out = net.forward_head(maps)
            (grads,) = torch.autograd.grad(out.logits[:, target].sum(), maps)
        cam = F.relu((grads.mean((-2, -1), keepdim=True) * maps).sum(2)).detach()  # (B, n, h, w)
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
        cam = cam / cam.amax((1, 2, 3), keepdim=True).clamp_min(1e-12)
        return cam, out.logits.detach()
    finally:
        net.train(was_training)


def load_faces(store: Any, n: int, seed: int) -> dict[str, Tensor]:
    """n rows (half fakes, half reals, at random, one frame per video) of a frame store as a batch."""
    rng = np.random.default_rng(seed)

    def one_per_video(rows: np.ndarray, k: int) -> np.ndarray:
        rows = rng.permutation(rows)
        _, first = np.unique(np.asarray(store.video)[rows], return_index=True)
        return rows[np.sort(first)][:k]

    fakes = one_per_video(np.flatnonzero(store.label == 1), (n + 1) // 2)
    rows = np.concatenate([fakes, one_per_video(np.flatnonzero(store.label == 0), n - len(fakes))])
    if len(rows) == 0:
        raise UserError(f"{store.path}: no frames")
    nb = store.read_batch(rows)
    return {
        "image": torch.from_numpy(np.ascontiguousarray(nb["image"].transpose(0, 3, 1, 2))),
        "face_mask": torch.from_numpy(np.ascontiguousarray(nb["face_mask"]))[:, None],
        "landmarks": torch.from_numpy(np.asarray(nb["landmarks"], dtype=np.float32)),
        "label": torch.from_numpy(nb["label"]),
    }


def render(module: Any, batch: dict[str, Tensor], out: Path) -> Path:
    """Faces (canonical crop, as tested) and one Grad-CAM overlay per local block."""
    from iid.reporting.figures import pyplot, save_grid

    plt = pyplot()

    with torch.no_grad():
        crop = module.eval_tf(dict(batch))["image"]  # (B, 3, 224, 224) in [0, 1]
    cams, logits = block_grad_cam(module.model, (crop - module.mean) / module.std)
    prob = logits.float().softmax(-1)[:, 1]
    b, n = cams.shape[:2]
    fig, axes = plt.subplots(b, n + 1, figsize=(2.0 * (n + 1), 2.0 * b), squeeze=False)
    for r in range(b):
        face = crop[r].permute(1, 2, 0).numpy().clip(0, 1)
        axes[r, 0].imshow(face)
        axes[r, 0].set_ylabel(f"{'fake' if int(batch['label'][r]) else 'real'}, p(fake) {float(prob[r]):.2f}",
                              fontsize=8)
        for i in range(n):
            axes[r, i + 1].imshow(face)
            axes[r, i + 1].imshow(cams[r, i].numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
    return save_grid(fig, axes, out, ["face", *(f"block {i + 1} (z{i + 1})" for i in range(n))])


def show(cfg: Any) -> Path:
    from iid.augment.show import open_store
    from iid.module import DetectorModule

    a = settings(CamArgs, "etd_cam", cfg)
    module = DetectorModule.from_checkpoint(a.ckpt)
    if module.config["model"].get("family") != "etd":
        raise UserError(f"ckpt={a.ckpt}: a {module.config['model'].get('family')} checkpoint; Grad-CAM per block needs one trained with `python -m iid.train model=etd`")
    module.eval()
    out = render(module, load_faces(open_store(a.store), a.n, a.seed), Path(a.out))
    print(f"wrote {out}")
    return out


def main(argv: list[str] | None = None) -> None:
    from iid.engine.cli import hydra_entry

    hydra_entry("etd_cam", show, argv)


if __name__ == "__main__":
    main()
