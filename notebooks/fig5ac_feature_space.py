# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Feature space (paper Fig. 5a/5c)
#
# t-SNE of the L2-normalised features of a few identities (colour) with real (o) and fake (x) frames,
# in-dataset and cross-dataset. The paper's binary classifier separates identities (clusters per
# colour) and, cross-dataset, mixes real and fake; its ID-unaware model mixes identities and keeps
# real and fake apart. The silhouettes below put numbers on both (cosine distance on the normalised
# features, not on the embedding: higher means more separable).
#
# ```bash
# python -m iid.analyze tsne ckpt=[<binary run>,<ours run>] names=[binary,ours]
# ```

# %%
import os
from pathlib import Path

from IPython.display import Markdown, display

from iid.analysis import outputs, tsne

# the folder `python -m iid.analyze <analysis> ... out=DIR` wrote to (IID_ANALYSES overrides it)
OUT = Path(os.environ.get("IID_ANALYSES", "../runs/analyses"))

doc = outputs.load(OUT, "tsne")
rows = outputs.read_table(OUT / "tsne", "tsne")
display(tsne.plot(rows))

# %%
lines = ["| model | data set | silhouette (identity) | silhouette (real/fake) |", "|---|---|---|---|"]
for model, per in doc["results"].items():
    for name, r in per.items():
        lines.append(f"| {model} | {name} ({r['kind']}) | {r['silhouette_identity']:.3f} | {r['silhouette_real_fake']:.3f} |")
display(Markdown("\n".join(lines)))
