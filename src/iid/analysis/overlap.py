"""ID overlap (supplement §A.1, Fig. 7): are the features of different people separable?

Per data set: 5 frames per video at equal intervals for every video (test split), the frozen
features projected to 2-D by PCA (fit on that data set's frames), each identity's region the
axis-aligned bounding rectangle of its projected frames, and two identities overlap when the IoU of
their rectangles is >= the threshold. Per identity the number of other identities it overlaps is
counted; the box plots show their distribution per threshold, one box per model. More overlap means
identity is less separable in the feature space (the paper: ours overlaps more than a binary
classifier, especially cross-dataset).

Protocol choices: the supplement does not list its thresholds; the default is 0.1 ... 0.5. A fake's
frames count for its target identity (`fakes=target`, the person whose video it is, which is how
the store labels every row; `fakes=source` or `exclude` are the alternatives). PCA is fit per model
and data set (the projection is the model's own). An identity with a single projected point has a
zero-area rectangle and overlaps nobody.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iid.settings import bounds


@dataclass(frozen=True)
class OverlapSettings:
    name: str = "overlap"
    splits: tuple[str, ...] = ("test",)
    frames: int = field(default=5, metadata=bounds(1))
    fakes: str = field(default="target", metadata=bounds(choices=("exclude", "target", "source")))
    thresholds: tuple[float, ...] = field(default=(0.1, 0.2, 0.3, 0.4, 0.5), metadata=bounds(0, 1, open_low=True))


def pca_2d(x: np.ndarray) -> np.ndarray:
    """(R, C) -> (R, 2): projection on the two leading principal components (SVD of centred x)."""
    x = np.asarray(x, np.float64)
    xc = x - x.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return xc @ vt[:2].T


def rectangles(points: np.ndarray, identity: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Identities (sorted) and their bounding rectangles (K, 4) x0, y0, x1, y1."""
    names = sorted(set(identity.tolist()))
    boxes = np.array([[*points[identity == n].min(0), *points[identity == n].max(0)] for n in names])
    return names, boxes.reshape(-1, 4)


def iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """(K, K) IoU of axis-aligned rectangles; 0 where the union has no area."""
    lt = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None).prod(-1)
    union = area[:, None] + area[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def overlap_counts(points: np.ndarray, identity: np.ndarray, thresholds) -> tuple[list[str], dict[float, np.ndarray]]:
    """Per threshold t, per identity: how many *other* identities its rectangle overlaps with IoU >= t."""
    names, boxes = rectangles(points, np.asarray(identity, dtype=object))
    iou = iou_matrix(boxes)
    np.fill_diagonal(iou, -1.0)  # never count an identity as overlapping itself
    return names, {float(t): (iou >= t).sum(1) for t in thresholds}


def overlap_pairs(boxes: np.ndarray, thresholds) -> np.ndarray:
    """(K, K): for each pair of identities, the share of the thresholds at which their rectangles
    overlap (IoU >= t); 0 on the diagonal. Its mean over pairs is the overlap rate the scorecard
    compares between models (iid.reporting.scorecard_analyses)."""
    iou = iou_matrix(np.asarray(boxes, np.float64).reshape(-1, 4))
    share = np.mean([iou >= t for t in thresholds], axis=0)
    np.fill_diagonal(share, 0.0)
    return share


# -- the run -------------------------------------------------------------------------------------
def run(ctx: Any, s: OverlapSettings) -> dict[str, Any]:
    from iid.analysis.common import run_model

    sets = ctx.open_sets(s.splits, frames_per_video=s.frames, fakes=s.fakes)
    rows, results = [], {}
    for model in ctx.models:
        results[model.name] = {}
        for fr in sets:
            sub = fr.subset(fr.identity != "")
            pts = pca_2d(run_model(model, sub, ctx.batch_size)["features"])
            names, counts = overlap_counts(pts, sub.identity, s.thresholds)
            boxes = dict(zip(*rectangles(pts, np.asarray(sub.identity, dtype=object))))  # kept for the scorecard
            k = len(names)
            results[model.name][fr.name] = {
                "kind": fr.kind, "identities": k, "frames": len(sub),
                "per_threshold": {str(t): {"mean": float(c.mean()), "median": float(np.median(c)),
                                           "max_possible": k - 1, "overlapping_pairs": int(c.sum() // 2)}
                                  for t, c in counts.items()},
            }  # fmt: skip
            for t, c in counts.items():
                for n, v in zip(names, c):
                    rows.append({"model": model.name, "set": fr.name, "kind": fr.kind, "threshold": t,
                                 "identity": n, "overlaps": int(v), "identities": k,
                                 **dict(zip(("x0", "y0", "x1", "y1"), map(float, boxes[n])))})  # fmt: skip
            ctx.log(f"overlap {model.name} on {fr.name}: {k} identities, mean overlapping IDs "
                    + ", ".join(f"{t:g}: {c.mean():.2f}" for t, c in counts.items()))
    ctx.outputs.table("overlap", rows)
    ctx.outputs.figure("overlap", plot(rows))
    summary = {m: {n: {t: v["mean"] for t, v in r["per_threshold"].items()} for n, r in per.items()}
               for m, per in results.items()}  # fmt: skip
    protocol = {"frames_per_video": s.frames, "splits": list(s.splits), "fakes": s.fakes,
                "thresholds": list(s.thresholds), "projection": "PCA to 2-D per model and data set",
                "region": "axis-aligned bounding rectangle of an identity's projected frames"}  # fmt: skip
    return {"summary": summary, "results": results, "protocol": protocol}


# -- the figure (the notebooks call this on overlap.csv) ---------------------------------------------------
def plot(rows: list[dict[str, Any]]):
    """Box plots of overlapping-ID counts per threshold, models side by side; one panel per data set."""
    import matplotlib.pyplot as plt

    from iid.analysis.probe import PALETTE

    sets = list(dict.fromkeys(r["set"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    ths = sorted({float(r["threshold"]) for r in rows})
    fig, axes = plt.subplots(1, max(1, len(sets)), figsize=(4.4 * max(1, len(sets)), 3.4), squeeze=False)
    width = 0.8 / max(1, len(models))
    for ax, name in zip(axes[0], sets):
        k = 0
        for i, m in enumerate(models):
            data = []
            for t in ths:
                rs = [r for r in rows if r["set"] == name and r["model"] == m and float(r["threshold"]) == t]
                data.append([int(r["overlaps"]) for r in rs])
                k = max([k] + [int(r["identities"]) for r in rs])
            pos = np.arange(len(ths)) + (i - (len(models) - 1) / 2) * width
            bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=True,
                            manage_ticks=False)  # fmt: skip
            for patch in bp["boxes"]:
                patch.set(facecolor=PALETTE[i % 6], alpha=0.45)
            ax.plot([], [], color=PALETTE[i % 6], lw=6, alpha=0.45, label=m)
        kind = next((r.get("kind", "") for r in rows if r["set"] == name), "")
        ax.set_xticks(np.arange(len(ths)), [f"{t:g}" for t in ths])
        ax.set_xlabel("IoU threshold")
        ax.set_title(f"{name} ({kind}, {k} IDs)", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("overlapping IDs per identity")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("ID overlap in the 2-D PCA of frozen features", fontsize=11)
    fig.tight_layout()
    return fig
