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
# # ID overlap (supplement §A, Fig. 7)
#
# Five frames of every video, the features projected to 2-D by PCA, and each identity's region the
# bounding rectangle of its points. For every identity we count how many others overlap it with an
# IoU at or above a threshold. Few overlaps mean identities are separable in the feature space (the
# detector encodes who is shown); the paper finds more overlap for its ID-unaware model than for a
# binary classifier, most clearly cross-dataset.
#
# ```bash
# python -m iid.analyze overlap ckpt=[<binary run>,<ours run>] names=[binary,ours]
# ```

# %%
import os
from pathlib import Path

from IPython.display import Markdown, display

from iid.analysis import outputs, overlap

# the folder `python -m iid.analyze <analysis> ... out=DIR` wrote to (IID_ANALYSES overrides it)
OUT = Path(os.environ.get("IID_ANALYSES", "../runs/analyses"))

doc = outputs.load(OUT, "overlap")
rows = outputs.read_table(OUT / "overlap", "overlap")
display(overlap.plot(rows))

# %%
ths = doc["protocol"]["thresholds"]
lines = ["| model | data set | IDs | " + " | ".join(f"mean @ {t:g}" for t in ths) + " |", "|---|---|---|" + "---|" * len(ths)]
for model, per in doc["results"].items():
    for name, r in per.items():
        cells = " | ".join(f"{r['per_threshold'][str(float(t))]['mean']:.2f}" for t in ths)
        lines.append(f"| {model} | {name} ({r['kind']}) | {r['identities']} | {cells} |")
display(Markdown("\n".join(lines)))
