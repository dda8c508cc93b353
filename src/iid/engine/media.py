"""Pictures a run leaves beside its numbers: the first training batch as the model sees it (after
MFS + DA, artifact boxes drawn) and the ROC curves of its test sets. Both are PNGs in the run
directory and, when W&B is on, images of the W&B run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _wandb_loggers(trainer) -> list:
    from pytorch_lightning.loggers import WandbLogger

    return [lg for lg in (trainer.loggers if trainer is not None else []) if isinstance(lg, WandbLogger)]


def batch_grid(batch: Mapping[str, Any], mean: torch.Tensor, std: torch.Tensor, path: Path, n: int = 16) -> Path:
    """A grid of the first n images of a transformed batch (normalised, (B,3,224,224)) with their
    label and artifact box."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    img = (batch["image"][:n].float() * std + mean).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    labels = batch["label"][:n].cpu().numpy()
    boxes = batch["boxes"][:n].cpu().numpy() if "boxes" in batch else np.zeros((len(img), 4))
    has_box = batch["has_box"][:n].cpu().numpy() if "has_box" in batch else np.zeros(len(img), bool)
    cols = min(8, len(img))
    rows = (len(img) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.75 * rows), squeeze=False)
    side = img.shape[1]
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in enumerate(axes.ravel()[: len(img)]):
        ax.imshow(img[i])
        if has_box[i]:
            x0, y0, x1, y1 = boxes[i] * side
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1.2))
        ax.set_title("fake" if labels[i] else "real", fontsize=7, color="C3" if labels[i] else "C0")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def roc_figure(predictions: Mapping[str, Mapping[str, torch.Tensor]], path: Path) -> Path:
    """Video-level ROC curve of every test set (video score = mean frame probability) in one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchmetrics.functional.classification import binary_auroc, binary_roc

    from iid.metrics import video_level

    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    for name, p in predictions.items():
        _, prob, label = video_level(p["prob"], p["label"], p["video"])
        if label.numel() == 0 or label.min() == label.max():
            continue
        fpr, tpr, _ = binary_roc(prob, label)
        ax.plot(fpr.numpy(), tpr.numpy(), label=f"{name} (AUC {float(binary_auroc(prob, label)):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("false positive rate (real called fake)")
    ax.set_ylabel("true positive rate")
    ax.set_title("video-level ROC")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def log_images(trainer, key: str, path: Path) -> None:
    for lg in _wandb_loggers(trainer):
        lg.log_image(key=key, images=[str(path)])


class FirstBatchGrid:
    """Callback: draws the run's first training batch after MFS + DA (<run_dir>/first_batch.png)."""

    def __new__(cls, *args, **kwargs):  # subclass Lightning's Callback lazily: keep imports light
        from pytorch_lightning.callbacks import Callback

        if not issubclass(cls, Callback):
            cls = type(cls.__name__, (cls, Callback), {})
        return object.__new__(cls)

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "first_batch.png"

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step != 0 or batch_idx != 0 or not trainer.is_global_zero or self.path.exists():
            return
        batch_grid(batch, pl_module.mean, pl_module.std, self.path)
        log_images(trainer, "train/first_batch", self.path)
