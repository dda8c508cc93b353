"""Feature space (paper Fig. 5a/5c): t-SNE of L2-normalised features, coloured by identity, marked real/fake.

As in §5.2: a sample of `identities` people (10) with up to `per_identity` frames each (10; 100
images), equal intervals over their videos; the frozen features (the final linear's input) are
L2-normalised and embedded in 2-D by scikit-learn's t-SNE (PCA init, seeded). One panel per model
and data set (in-dataset and cross-dataset). Colour: identity (a fake counts for its target, the
person whose video it is; `fakes=source` or `exclude` otherwise); marker: real (o) or fake (x).

Alongside the picture, two numbers that do not depend on the embedding's randomness: the silhouette
of the identity labels and of the real/fake labels on the normalised features (cosine distance;
higher = more separable), so "identities are separable" is measured, not eyeballed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iid.settings import bounds

MARKERS = {0: "o", 1: "x"}


@dataclass(frozen=True)
class TSNESettings:
    name: str = "tsne"
    splits: tuple[str, ...] = ("test",)
    frames: int = field(default=5, metadata=bounds(1))  # per video, equal intervals
    fakes: str = field(default="target", metadata=bounds(choices=("exclude", "target", "source")))
    identities: int = field(default=10, metadata=bounds(2))
    per_identity: int = field(default=10, metadata=bounds(1))
    perplexity: float = field(default=15.0, metadata=bounds(1))


def sample_identities(identity: np.ndarray, label: np.ndarray, n_ids: int, per_id: int, seed: int) -> np.ndarray:
    """Indices: `n_ids` identities (preferring those with both real and fake frames), up to `per_id`
    frames each at equal intervals over its rows."""
    rng = np.random.default_rng(seed)
    names = sorted(set(identity.tolist()) - {""})
    both = [n for n in names if len(set(label[identity == n].tolist())) == 2]
    rest = [n for n in names if n not in both]
    pick = list(rng.permutation(np.array(both, dtype=object)))[:n_ids]
    pick += list(rng.permutation(np.array(rest, dtype=object)))[: n_ids - len(pick)]
    out: list[int] = []
    for n in sorted(pick):
        real, fake = (np.flatnonzero((identity == n) & (label == k)) for k in (0, 1))
        n_real = min(len(real), max(per_id // 2, per_id - len(fake)))  # half real, half fake where possible
        for idx, k in ((real, n_real), (fake, min(len(fake), per_id - n_real))):
            if k:
                out.extend(idx[np.unique(np.linspace(0, len(idx) - 1, k).round().astype(int))].tolist())
    return np.array(sorted(out), dtype=np.int64)


def embed(features: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    x = features / np.clip(np.linalg.norm(features, axis=1, keepdims=True), 1e-12, None)
    p = float(min(perplexity, max(1.0, (len(x) - 1) / 3)))  # t-SNE needs perplexity < n
    return TSNE(n_components=2, perplexity=p, init="pca", random_state=seed, metric="euclidean").fit_transform(x)


def silhouette(features: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score

    if len(set(labels.tolist())) < 2 or len(set(labels.tolist())) >= len(labels):
        return float("nan")
    x = features / np.clip(np.linalg.norm(features, axis=1, keepdims=True), 1e-12, None)
    return float(silhouette_score(x, labels, metric="cosine"))


def run(ctx: Any, s: TSNESettings) -> dict[str, Any]:
    from iid.analysis.common import run_model

    sets = ctx.open_sets(s.splits, frames_per_video=s.frames, fakes=s.fakes)
    rows, results = [], {}
    for fr in sets:
        pick = sample_identities(fr.identity, fr.label, s.identities, s.per_identity, ctx.seed)
        sub = fr.subset(np.isin(np.arange(len(fr)), pick))
        for model in ctx.models:
            feats = run_model(model, sub, ctx.batch_size)["features"]
            xy = embed(feats, s.perplexity, ctx.seed)
            res = {"kind": fr.kind, "frames": len(sub), "identities": len(set(sub.identity)),
                   "fakes": int(sub.label.sum()), "silhouette_identity": silhouette(feats, sub.identity.astype(str)),
                   "silhouette_real_fake": silhouette(feats, sub.label)}  # fmt: skip
            results.setdefault(model.name, {})[fr.name] = res
            ctx.log(f"tsne {model.name} on {fr.name}: silhouette identity {res['silhouette_identity']:.3f}, "
                    f"real/fake {res['silhouette_real_fake']:.3f}")
            for i in range(len(sub)):
                rows.append({"model": model.name, "set": fr.name, "kind": fr.kind, "identity": sub.identity[i],
                             "label": int(sub.label[i]), "video": sub.video[i], "x": float(xy[i, 0]), "y": float(xy[i, 1])})  # fmt: skip
    ctx.outputs.table("tsne", rows)
    ctx.outputs.figure("tsne", plot(rows))
    summary = {m: {n: {k: r[k] for k in ("silhouette_identity", "silhouette_real_fake")} for n, r in per.items()}
               for m, per in results.items()}  # fmt: skip
    protocol = {"identities": s.identities, "per_identity": s.per_identity, "frames_per_video": s.frames,
                "features": "L2-normalised ModelOutput.features", "perplexity": s.perplexity, "fakes": s.fakes}  # fmt: skip
    return {"summary": summary, "results": results, "protocol": protocol}


def plot(rows: list[dict[str, Any]]):
    """One t-SNE panel per model (rows) and data set (columns)."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    sets = list(dict.fromkeys(r["set"] for r in rows))
    fig, axes = plt.subplots(max(1, len(models)), max(1, len(sets)), figsize=(3.8 * max(1, len(sets)), 3.6 * max(1, len(models))),
                             squeeze=False)  # fmt: skip
    cmap = plt.get_cmap("tab10" if len({r['identity'] for r in rows}) <= 10 else "tab20")
    for j, name in enumerate(sets):
        ids = sorted({r["identity"] for r in rows if r["set"] == name})
        colour = {n: cmap(k % cmap.N) for k, n in enumerate(ids)}
        for i, m in enumerate(models):
            ax = axes[i][j]
            rs = [r for r in rows if r["set"] == name and r["model"] == m]
            for lab in (0, 1):
                pts = [r for r in rs if int(r["label"]) == lab]
                ax.scatter([float(r["x"]) for r in pts], [float(r["y"]) for r in pts], c=[colour[r["identity"]] for r in pts],
                           marker=MARKERS[lab], s=22 if lab == 0 else 26, linewidths=1.2 if lab else 0.4,
                           edgecolors="k" if lab == 0 else None)  # fmt: skip
            kind = rs[0].get("kind", "") if rs else ""
            ax.set_title(f"{m} / {name} ({kind})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0][0].scatter([], [], marker="o", c="w", edgecolors="k", label="real")
    axes[0][0].scatter([], [], marker="x", c="k", label="fake")
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle("t-SNE of L2-normalised features (colour: identity)", fontsize=11)
    fig.tight_layout()
    return fig
