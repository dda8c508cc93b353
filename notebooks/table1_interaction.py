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
# # Multivariate interaction I([N]) (paper §3.2, Table 1)
#
# The 224 face crop is cut into 16x16 units. I([N]) is the part of the fake score that no single unit
# explains: the score with every unit present, minus the score each unit earns on its own against a
# baseline. Used as a detection score, its frame-level AUC says whether the whole-face pattern (the
# paper's reading: identity) helps (AUC > 0.5) or misleads (< 0.5) the detector. The paper finds
# > 0.5 in-dataset and < 0.5 cross-dataset for binary classifiers (Hypothesis 2). The baseline value
# of an absent unit is our choice (the paper is silent): see the protocol printed below.
#
# ```bash
# python -m iid.analyze interaction ckpt=[<binary run>,<ours run>] names=[binary,ours]
# ```

# %%
import os
from pathlib import Path

from IPython.display import Markdown, display

from iid.analysis import interaction, outputs

# the folder `python -m iid.analyze <analysis> ... out=DIR` wrote to (IID_ANALYSES overrides it)
OUT = Path(os.environ.get("IID_ANALYSES", "../runs/analyses"))

doc = outputs.load(OUT, "interaction")
rows = outputs.read_table(OUT / "interaction", "interaction")
display(interaction.plot(rows))

# %%
lines = ["| model | data set | frames | AUC of I([N]) | AUC of f(N) |", "|---|---|---|---|---|"]
for model, per in doc["results"].items():
    for name, r in per.items():
        lines.append(f"| {model} | {name} ({r['kind']}) | {r['frames']} | {r['auc_I']:.3f} | {r['auc_score']:.3f} |")
display(Markdown("\n".join(lines)))
print(doc["protocol"])
