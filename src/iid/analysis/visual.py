"""Visual results (paper Fig. 6, supplement Fig. 9/10): where does the ADM say the artifact is?

For a checkpoint with an Artifact Detection Module (`ModelOutput.extras` `loc` (B,168,4), `conf`
(B,168,2)), each anchor's offsets are decoded against the default anchors into a box on the 224 crop,
its artifact score is softmax(conf)[..., 1], boxes scoring below `score_threshold` are dropped,
torchvision's NMS (`nms_iou`) removes duplicates, and the best remaining box is drawn on the face
(red, with its score; none when no anchor clears the threshold). Three groups of faces:

- test fakes and test reals of the data set, as evaluation crops them (Fig. 6: real deepfakes carry no
  box annotation, so there is no ground truth to draw);
- MFS fakes: training fakes with a source frame, put through the checkpoint's Multi-scale Facial Swap
  forced to the partial swap (supplement Fig. 10) with no DA, so the swapped window is known: its
  ground-truth box (green, dashed) is drawn next to the prediction, and their IoU is reported.

Binary classifiers have no ADM: they are skipped (an analysis of only such checkpoints is an error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from iid.errors import UserError
from iid.settings import bounds


@dataclass(frozen=True)
class VisualSettings:
    name: str = "visual"
    n: int = field(default=4, metadata=bounds(1, 32))  # faces per group
    score_threshold: float = field(default=0.5, metadata=bounds(0, 1))
    nms_iou: float = field(default=0.3, metadata=bounds(0, 1, open_low=True))
    mfs_split: str = "train"  # where MFS fakes come from (the fakes' source frames are stored there)


def best_boxes(loc: torch.Tensor, conf: torch.Tensor, score_threshold: float = 0.5, nms_iou: float = 0.3,
               anchors: torch.Tensor | None = None) -> list[tuple[np.ndarray, float] | None]:
    """Per image: (best box x0,y0,x1,y1 in [0, 1] on the crop, its artifact score) after score
    filtering and NMS, or None when no anchor scores above `score_threshold`."""
    from torchvision.ops import nms

    from iid.models.anchors import decode, default_anchors

    anchors = default_anchors() if anchors is None else anchors
    boxes = decode(loc.float(), anchors.to(loc.device)).clamp(0, 1)  # (B, K, 4)
    scores = conf.float().softmax(-1)[..., 1]  # (B, K)
    out: list[tuple[np.ndarray, float] | None] = []
    for b, s in zip(boxes, scores):
        keep = s > score_threshold
        if not keep.any():
            out.append(None)
            continue
        kb, ks = b[keep], s[keep]
        k = nms(kb, ks, nms_iou)  # indices sorted by decreasing score
        out.append((kb[k[0]].cpu().numpy(), float(ks[k[0]])))
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.clip(rb - lt, 0, None).prod())
    union = float(np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter)
    return inter / union if union > 0 else 0.0


# -- the run -------------------------------------------------------------------------------------
def run(ctx: Any, s: VisualSettings) -> dict[str, Any]:
    from iid.analysis.common import select_frames

    adm = [m for m in ctx.models if _has_adm(m)]
    if not adm:
        raise UserError("the visual analysis needs a checkpoint with an Artifact Detection Module (trained with `python -m iid.train model=caddm`)")
    for m in ctx.models:
        if m not in adm:
            ctx.log(f"visual: {m.name} has no ADM ({m.family}); skipped")
    name = ctx.sets[0] if ctx.sets else ctx.data.default_sets()[0]
    ctx.data.ensure([name], ["test", s.mfs_split])
    test = select_frames(ctx.data.stores(name, ["test"]), name, name == ctx.data.train_set, frames_per_video=1, fakes="target")
    rng = np.random.default_rng(ctx.seed)
    groups = {}
    for label, group in ((1, "test fake"), (0, "test real")):
        idx = np.flatnonzero(test.label == label)
        if len(idx):
            groups[group] = test.subset(np.isin(np.arange(len(test)), rng.choice(idx, min(s.n, len(idx)), replace=False)))
    rows, figures, results = [], {}, {}
    for model in adm:
        panels = []
        for group, fr in groups.items():
            panels += _predict(model, fr, group, s, ctx)
        mfs = _mfs_group(model, ctx, name, s)
        panels += mfs
        for p in panels:
            rows.append({k: v for k, v in p.items() if k != "image"} | {"model": model.name})
        stem = "visual" if len(adm) == 1 else f"visual_{len(figures)}"
        ctx.outputs.figure(stem, plot(panels, f"{model.name}: ADM best box after NMS (score > {s.score_threshold:g})"))
        figures[model.name] = f"{stem}.png"
        results[model.name] = _numbers(panels)
        ctx.log(f"visual {model.name}: " + ", ".join(f"{g}: {v['with_box']}/{v['n']} boxed" for g, v in results[model.name].items()))
    ctx.outputs.table("visual", rows)
    protocol = {"score_threshold": s.score_threshold, "nms_iou": s.nms_iou, "set": name,
                "mfs": "the checkpoint's MFS forced to partial swaps (p_global=0), DA off, on the " + s.mfs_split + " split"}  # fmt: skip
    return {"summary": results, "results": results, "figures": figures, "protocol": protocol}


def _has_adm(model: Any) -> bool:
    with torch.no_grad():
        out = model.module(torch.zeros(1, 3, 224, 224, device=model.module.device))
    return "loc" in out.extras and "conf" in out.extras


def _unnormalise(model: Any, x: torch.Tensor) -> np.ndarray:
    img = (x.float() * model.module.std + model.module.mean).clamp(0, 1)
    return img.permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def _predict(model: Any, fr: Any, group: str, s: VisualSettings, ctx: Any) -> list[dict[str, Any]]:
    from iid.analysis.common import batches, eval_inputs

    out = []
    for pos, batch in batches(fr, ctx.batch_size):
        b = eval_inputs(model, batch)
        o = model.module(b["image"])
        best = best_boxes(o.extras["loc"], o.extras["conf"], s.score_threshold, s.nms_iou)
        prob = o.logits.float().softmax(-1)[:, 1].cpu().numpy()
        for k, (img, bb) in enumerate(zip(_unnormalise(model, b["image"]), best)):
            i = pos.start + k
            out.append(_panel(group, img, bb, None, fr.video[i], int(fr.frame[i]), int(fr.label[i]), float(prob[k])))
    return out


@torch.no_grad()
def _mfs_group(model: Any, ctx: Any, name: str, s: VisualSettings) -> list[dict[str, Any]]:
    """Training fakes through MFS (partial swaps, no DA): prediction next to the swapped window."""
    from iid.analysis.common import select_frames, to_device
    from iid.augment.config import mfs_config
    from iid.augment.mfs import KIND_PARTIAL
    from iid.augment.pipeline import build_train_transform
    from iid.data.store import store_exists

    d = ctx.data.data
    if not store_exists(d.store_root, name, s.mfs_split):
        ctx.log(f"visual: no {name}/{s.mfs_split} store: no MFS ground truth drawn")
        return []
    fr = select_frames(ctx.data.stores(name, [s.mfs_split]), name, True, frames_per_video=1, fakes="target")
    store = fr.parts[0][0]
    cand = np.flatnonzero((fr.label == 1) & store.has_source[fr.parts[0][1]])
    if not len(cand):
        return []
    rng = np.random.default_rng(ctx.seed + 1)
    fr = fr.subset(np.isin(np.arange(len(fr)), rng.choice(cand, min(4 * s.n, len(cand)), replace=False)))
    cfg = {**(model.config.get("mfs") or {}), "enabled": True, "p_global": 0.0}
    tf = build_train_transform(mfs_config(cfg), {"enabled": False}, seed=ctx.seed)
    from iid.analysis.common import batches

    out = []
    module = model.module
    for pos, batch in batches(fr, ctx.batch_size):
        b = tf(to_device(batch, module.device))
        image = (b["image"] - module.mean) / module.std
        o = module(image)
        best = best_boxes(o.extras["loc"], o.extras["conf"], s.score_threshold, s.nms_iou)
        prob = o.logits.float().softmax(-1)[:, 1].cpu().numpy()
        for k, (img, bb) in enumerate(zip(_unnormalise(model, image), best)):
            if int(b["mfs_kind"][k]) != KIND_PARTIAL or not bool(b["has_box"][k]):
                continue  # no dissimilar window found: the fake was kept whole, no localised ground truth
            i = pos.start + k
            out.append(_panel("MFS fake", img, bb, b["boxes"][k].cpu().numpy(), fr.video[i], int(fr.frame[i]), 1, float(prob[k])))
            if len(out) >= s.n:
                return out
    return out


def _panel(group, img, best, gt, video, frame, label, prob) -> dict[str, Any]:
    p = {"group": group, "video": video, "frame": frame, "label": label, "prob_fake": prob, "image": img,
         "score": None, "x0": None, "y0": None, "x1": None, "y1": None,
         "gt_x0": None, "gt_y0": None, "gt_x1": None, "gt_y1": None, "iou": None}  # fmt: skip
    if best is not None:
        (p["x0"], p["y0"], p["x1"], p["y1"]), p["score"] = (float(v) for v in best[0]), best[1]
    if gt is not None:
        p["gt_x0"], p["gt_y0"], p["gt_x1"], p["gt_y1"] = (float(v) for v in gt)
        p["iou"] = box_iou(best[0], np.asarray(gt, float)) if best is not None else 0.0
    return p


def _numbers(panels: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for g in dict.fromkeys(p["group"] for p in panels):
        ps = [p for p in panels if p["group"] == g]
        boxed = [p for p in ps if p["score"] is not None]
        out[g] = {"n": len(ps), "with_box": len(boxed),
                  "mean_score": float(np.mean([p["score"] for p in boxed])) if boxed else None,
                  "mean_prob_fake": float(np.mean([p["prob_fake"] for p in ps]))}  # fmt: skip
        if any(p["iou"] is not None for p in ps):
            out[g]["mean_iou_with_mfs_box"] = float(np.mean([p["iou"] for p in ps if p["iou"] is not None]))
    return out


def plot(panels: list[dict[str, Any]], title: str):
    """One row per group of faces; predicted box red (score), MFS ground truth green dashed."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    groups = list(dict.fromkeys(p["group"] for p in panels))
    cols = max([sum(p["group"] == g for p in panels) for g in groups] + [1])
    fig, axes = plt.subplots(max(1, len(groups)), cols, figsize=(2.2 * cols, 2.75 * max(1, len(groups))), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, g in enumerate(groups):
        for j, p in enumerate([p for p in panels if p["group"] == g]):
            ax = axes[i][j]
            img = p["image"]
            h, w = img.shape[:2]
            ax.imshow(img)
            if p["gt_x0"] is not None:
                ax.add_patch(Rectangle((p["gt_x0"] * w, p["gt_y0"] * h), (p["gt_x1"] - p["gt_x0"]) * w,
                                       (p["gt_y1"] - p["gt_y0"]) * h, fill=False, ec="lime", lw=1.6, ls="--"))  # fmt: skip
            if p["score"] is not None:
                ax.add_patch(Rectangle((p["x0"] * w, p["y0"] * h), (p["x1"] - p["x0"]) * w, (p["y1"] - p["y0"]) * h,
                                       fill=False, ec="red", lw=1.6))  # fmt: skip
                ax.text(p["x0"] * w + 2, p["y0"] * h + 10, f"{p['score']:.2f}", color="red", fontsize=7,
                        bbox={"facecolor": "white", "alpha": 0.6, "pad": 0.5, "lw": 0})  # fmt: skip
            sub = f"p(fake) {p['prob_fake']:.2f}" + (f", IoU {p['iou']:.2f}" if p["iou"] is not None else "")
            ax.set_title(f"{g}\n{sub}", fontsize=7)
    fig.suptitle(title + "\nred: predicted, green dashed: MFS ground truth", fontsize=9)
    fig.tight_layout()
    return fig
