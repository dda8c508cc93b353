"""ID linear probe (paper Fig. 2, Fig. 5b/5d): how linearly decodable is identity from a frozen detector?

The detector is frozen; each frame's `ModelOutput.features` (the final linear's input) is taken on the
evaluation crop, and a linear identity classifier (one `nn.Linear`, softmax cross-entropy, Adam) is
fit on some frames of each identity and tested on the others. Accuracy on the held-out frames after
every probe epoch is the curve; chance is 1 / number of identities (the held-out side is
near-balanced; the majority share of the held-out side is reported too).

Protocol choices (the paper gives none beyond "linear classification on frozen features"):
- Train/test split per identity (`split_by=auto`): an identity with two or more videos keeps whole
  videos out for testing (`test_fraction` of them, at least one, never all), so no frame of a test video
  is trained on; an identity with a single video (FF++ originals: one video per person) is split in
  time: the last `test_fraction` of each video's frames are tested, the first ones trained on. Never
  the same frame on both sides. `split_by=video` or `frame` forces one rule for every identity.
- Labels: reals carry their person. A fake carries two people (the target whose video was
  manipulated, the source whose face was put in); by default fakes are left out (`fakes=exclude`) so
  every label is unambiguous and every data set (LFW has no fakes) is probed the same way;
  `fakes=target` or `fakes=source` labels them by one of the two.
- Features are standardised with the training side's mean and std (models of different families
  have features of very different scales; the probe's learning rate should not favour one).
- Data sets: the data set the checkpoint was trained on (all its splits: identities never appear in
  two FF++ splits, so more splits mean more identities), its cross-dataset test sets, and an
  LFW-layout face-recognition folder (`analysis.lfw=<folder>`, aligned by prepare's pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from iid.settings import bounds

PALETTE = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown")


@dataclass(frozen=True)
class ProbeSettings:
    name: str = "probe"
    splits: tuple[str, ...] = ("train", "val", "test")  # splits of each data set that are read (those that exist)
    frames: int | None = field(default=None, metadata=bounds(1, type=int, nullable=True))  # per video; null: all stored
    fakes: str = field(default="exclude", metadata=bounds(choices=("exclude", "target", "source")))
    split_by: str = field(default="auto", metadata=bounds(choices=("auto", "video", "frame")))
    test_fraction: float = field(default=0.3, metadata=bounds(0, 1, open_low=True, open_high=True))
    max_identities: int | None = field(default=None, metadata=bounds(2, type=int, nullable=True))
    epochs: int = field(default=100, metadata=bounds(1))
    lr: float = field(default=1e-2, metadata=bounds(0, open_low=True))
    weight_decay: float = field(default=0.0, metadata=bounds(0))
    batch_size: int = field(default=256, metadata=bounds(1))
    standardize: bool = True
    lfw: str | None = None  # an LFW-layout folder (lfw/<name>/<name>_NNNN.jpg): probed as data set `lfw`
    lfw_landmarks: str = "dlib"  # landmark backend for it (oracle: <stem>.landmarks.npy sidecars)
    lfw_min_images: int = field(default=2, metadata=bounds(2))


# -- the split -----------------------------------------------------------------------------------
def split_rows(identity: np.ndarray, video: np.ndarray, frame: np.ndarray, split_by: str = "auto",
               test_fraction: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """(train mask, test mask, how many identities were split by video / by frame / dropped).

    Per identity (rows with identity '' are never used): by whole videos when it has >= 2 videos
    (auto or video), else in time inside each video (the last `test_fraction` of its frames); an
    identity that cannot be on both sides (one frame in all) is dropped. Masks are disjoint."""
    identity = np.asarray(identity, dtype=object)
    video = np.asarray(video, dtype=object)
    frame = np.asarray(frame)
    train = np.zeros(len(identity), bool)
    test = np.zeros(len(identity), bool)
    how = {"by_video": 0, "by_frame": 0, "dropped": 0}
    rng = np.random.default_rng(seed)
    for ident in sorted({i for i in identity if i != ""}):
        rows = np.flatnonzero(identity == ident)
        vids = sorted(set(video[rows]))
        if split_by == "video" and len(vids) < 2:
            how["dropped"] += 1
            continue
        if len(vids) >= 2 and split_by != "frame":
            n_test = min(len(vids) - 1, max(1, int(round(test_fraction * len(vids)))))
            held = set(rng.permutation(np.array(vids, dtype=object))[:n_test])
            is_test = np.array([v in held for v in video[rows]])
            train[rows[~is_test]], test[rows[is_test]] = True, True
            how["by_video"] += 1
            continue
        tr_any = te_any = False
        for v in vids:
            r = rows[video[rows] == v]
            r = r[np.argsort(frame[r], kind="stable")]
            if len(r) < 2:
                continue
            n_test = min(len(r) - 1, max(1, int(np.ceil(test_fraction * len(r)))))
            train[r[:-n_test]], test[r[-n_test:]] = True, True
            tr_any = te_any = True
        if tr_any and te_any:
            how["by_frame"] += 1
        else:
            how["dropped"] += 1
    return train, test, how


# -- the probe -----------------------------------------------------------------------------------
def fit_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
              epochs: int = 100, lr: float = 1e-2, weight_decay: float = 0.0, batch_size: int = 256,
              standardize: bool = True, seed: int = 0) -> dict[str, list[float]]:
    """Train a linear classifier on (x_train, y_train) with labels 0..K-1; accuracy per epoch.

    Returns {"epoch": [1..E], "train_acc": [...], "test_acc": [...]} (full passes, shuffled minibatches)
    and "test_correct": per test row, 1 where the final probe names its identity (the scorecard
    bootstraps the held-out accuracy from these)."""
    x_tr = torch.as_tensor(np.asarray(x_train, np.float32))
    x_te = torch.as_tensor(np.asarray(x_test, np.float32))
    y_tr = torch.as_tensor(np.asarray(y_train, np.int64))
    y_te = torch.as_tensor(np.asarray(y_test, np.int64))
    if standardize:
        mu, sd = x_tr.mean(0, keepdim=True), x_tr.std(0, keepdim=True, unbiased=False).clamp(min=1e-6)
        x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    k = int(max(y_tr.max().item(), y_te.max().item() if len(y_te) else 0)) + 1
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = torch.nn.Linear(x_tr.shape[1], k)
    opt = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
    hist: dict[str, list[float]] = {"epoch": [], "train_acc": [], "test_acc": []}
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(x_tr), generator=gen)
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(probe(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
        with torch.no_grad():
            hist["epoch"].append(epoch)
            hist["train_acc"].append(float((probe(x_tr).argmax(1) == y_tr).float().mean()))
            hist["test_acc"].append(float((probe(x_te).argmax(1) == y_te).float().mean()) if len(y_te) else float("nan"))
    with torch.no_grad():
        hist["test_correct"] = (probe(x_te).argmax(1) == y_te).int().tolist()
    return hist


def probe_set(features: np.ndarray, identity: np.ndarray, video: np.ndarray, frame: np.ndarray,
              s: ProbeSettings, seed: int = 0) -> dict[str, Any]:
    """Split, fit and score one data set's features; the numbers of the JSON document."""
    train, test, how = split_rows(identity, video, frame, s.split_by, s.test_fraction, seed)
    names = sorted(set(identity[train]) & set(identity[test]))
    if s.max_identities is not None and len(names) > s.max_identities:
        names = sorted(np.random.default_rng(seed).choice(np.array(names, dtype=object), s.max_identities, replace=False))
    index = {n: i for i, n in enumerate(names)}
    keep = np.array([i in index for i in identity])
    train, test = train & keep, test & keep
    if len(names) < 2:
        return {"identities": len(names), "skipped": "fewer than 2 identities on both sides of the split"}
    y = np.array([index.get(i, -1) for i in identity])
    hist = fit_probe(features[train], y[train], features[test], y[test], epochs=s.epochs, lr=s.lr,
                     weight_decay=s.weight_decay, batch_size=s.batch_size, standardize=s.standardize, seed=seed)  # fmt: skip
    counts = np.bincount(y[test], minlength=len(names))
    correct = hist.pop("test_correct")
    return {
        "identities": len(names), "train_frames": int(train.sum()), "test_frames": int(test.sum()),
        "train_videos": len(set(video[train])), "test_videos": len(set(video[test])), "split": how,
        "chance": 1.0 / len(names), "majority": float(counts.max() / counts.sum()),
        "final_test_acc": hist["test_acc"][-1], "best_test_acc": max(hist["test_acc"]),
        "final_train_acc": hist["train_acc"][-1], "history": hist,
        # per held-out frame, in row order: what the scorecard resamples by video (run() moves it to a CSV)
        "held_out": {"video": video[test], "frame": frame[test], "identity": identity[test], "correct": correct},
    }  # fmt: skip


# -- the run -------------------------------------------------------------------------------------
def run(ctx: Any, s: ProbeSettings) -> dict[str, Any]:
    from iid.analysis.common import run_model

    sets = ctx.open_sets(s.splits, frames_per_video=s.frames, fakes=s.fakes)
    if s.lfw:
        sets.append(ctx.lfw_frames(s.lfw, s.lfw_landmarks, s.lfw_min_images))
    results: dict[str, dict[str, Any]] = {}
    rows, frames = [], []
    first: dict[str, list] = {}  # data set -> held-out (video, frame) of the first model
    for model in ctx.models:
        results[model.name] = {}
        for fr in sets:
            keep = fr.identity != ""
            sub = fr.subset(keep)
            feats = run_model(model, sub, ctx.batch_size)["features"]
            res = probe_set(feats, sub.identity, sub.video, sub.frame, s, ctx.seed)
            res.update(kind=sub.kind, feature_dim=int(feats.shape[1]) if feats.ndim == 2 else 0)
            held = res.pop("held_out", None)
            results[model.name][fr.name] = res
            if held is not None:
                keys = list(zip(held["video"].tolist(), held["frame"].tolist()))
                # the split depends on identities, videos, frames and the seed only: every model is tested
                # on the same frames, which is what makes the scorecard's bootstrap paired
                if first.setdefault(fr.name, keys) != keys:
                    raise RuntimeError(f"probe on {fr.name}: {model.name} was tested on other frames than {ctx.models[0].name}")
                frames += [{"model": model.name, "set": fr.name, "kind": sub.kind, "video": v, "frame": f, "identity": i,
                            "correct": c} for (v, f), i, c in zip(keys, held["identity"].tolist(), held["correct"])]  # fmt: skip
            ctx.log(f"probe {model.name} on {fr.name}: {res.get('identities')} identities, test acc "
                    f"{res.get('final_test_acc', float('nan')):.3f} (chance {res.get('chance', float('nan')):.3f})")
            for e, tr, te in zip(*(res.get("history", {}).get(k, []) for k in ("epoch", "train_acc", "test_acc"))):
                rows.append({"model": model.name, "set": fr.name, "kind": sub.kind, "epoch": e, "train_acc": tr,
                             "test_acc": te, "chance": res["chance"]})  # fmt: skip
    ctx.outputs.table("probe", rows)
    ctx.outputs.table("probe_frames", frames)
    ctx.outputs.figure("probe", plot(rows))
    summary = {m: {n: {k: r.get(k) for k in ("final_test_acc", "chance", "identities")} for n, r in per.items()}
               for m, per in results.items()}  # fmt: skip
    return {"summary": summary, "results": results, "protocol": protocol_text(s)}


def protocol_text(s: ProbeSettings) -> dict[str, Any]:
    return {"split_by": s.split_by, "test_fraction": s.test_fraction, "fakes": s.fakes,
            "features": "ModelOutput.features (input of the final linear), eval crop, standardised on the train side"
            if s.standardize else "ModelOutput.features (input of the final linear), eval crop",
            "classifier": f"nn.Linear, Adam lr {s.lr}, weight decay {s.weight_decay}, batch {s.batch_size}, {s.epochs} epochs"}  # fmt: skip


# -- the figure (the notebooks call this on probe.csv) -----------------------------------------------------
def plot(rows: list[dict[str, Any]]):
    """Test accuracy against probe epochs, one panel per data set, one line per model, chance dashed."""
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(r["set"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, max(1, len(sets)), figsize=(4.2 * max(1, len(sets)), 3.4), squeeze=False)
    for ax, name in zip(axes[0], sets):
        chance = None
        kind = ""
        for i, m in enumerate(models):
            rs = [r for r in rows if r["set"] == name and r["model"] == m]
            if not rs:
                continue
            ax.plot([int(r["epoch"]) for r in rs], [100 * float(r["test_acc"]) for r in rs], color=PALETTE[i % 6], label=m)
            chance, kind = float(rs[0]["chance"]), rs[0].get("kind", "")
        if chance is not None:
            ax.axhline(100 * chance, color="gray", ls="--", lw=1, label="chance")
        ax.set_title(f"{name} ({kind})" if kind else name, fontsize=10)
        ax.set_xlabel("probe epoch")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("ID accuracy, held-out frames (%)")
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle("ID linear probe on frozen features", fontsize=11)
    fig.tight_layout()
    return fig
