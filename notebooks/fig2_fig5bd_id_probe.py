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
# # ID linear probe (paper Fig. 2, Fig. 5b/5d)
#
# A frozen detector's pooled feature (the input of its final linear layer) is given to a linear
# identity classifier, fit on some frames of each person and tested on frames it never saw (whole
# held-out videos where a person has several, else the last frames of the video). If held-out
# identity accuracy climbs far above chance, the detector has learned who is in the picture without
# ever being told (the paper's Hypothesis 1); the ID-unaware model should stay closer to chance.
# Produced by:
#
# ```bash
# python -m iid.analyze probe ckpt=[<binary run>,<ours run>] names=[binary,ours]
# ```

# %%
import os
from pathlib import Path

from IPython.display import Markdown, display

from iid.analysis import outputs, probe

# the folder `python -m iid.analyze <analysis> ... out=DIR` wrote to (IID_ANALYSES overrides it)
OUT = Path(os.environ.get("IID_ANALYSES", "../runs/analyses"))

doc = outputs.load(OUT, "probe")
rows = outputs.read_table(OUT / "probe", "probe")
display(probe.plot(rows))

# %% [markdown]
# Final held-out accuracy per model and data set, against chance (1 / number of identities):

# %%
lines = ["| model | data set | identities | held-out accuracy | chance |", "|---|---|---|---|---|"]
for model, per in doc["results"].items():
    for name, r in per.items():
        if "final_test_acc" in r:
            lines.append(f"| {model} | {name} ({r['kind']}) | {r['identities']} | {r['final_test_acc']:.3f} | {r['chance']:.3f} |")
display(Markdown("\n".join(lines)))
print(doc["protocol"])
