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
# # Visual results (paper Fig. 6, supplement Fig. 9/10)
#
# The Artifact Detection Module scores 168 anchors per face; after dropping low scores and NMS its
# best box is drawn in red. Test fakes and reals come as evaluation crops them (no box annotation
# exists for them); MFS fakes are training fakes put through a partial Multi-scale Facial Swap, whose
# swapped window (green, dashed) is the ground truth the ADM is trained on. A trained ADM puts boxes
# on fakes, few or low-scoring ones on reals, and near the swapped window on MFS fakes.
#
# ```bash
# python -m iid.analyze visual ckpt=<ours run>
# ```

# %%
import os
from pathlib import Path

from IPython.display import Image, Markdown, display

from iid.analysis import outputs

# the folder `python -m iid.analyze <analysis> ... out=DIR` wrote to (IID_ANALYSES overrides it)
OUT = Path(os.environ.get("IID_ANALYSES", "../runs/analyses"))

doc = outputs.load(OUT, "visual")
for model, fig in doc["figures"].items():
    display(Markdown(f"**{model}**"))
    display(Image(filename=str(OUT / "visual" / fig)))

# %%
lines = ["| model | group | faces | with a box | mean box score | mean p(fake) | IoU with MFS box |", "|---|---|---|---|---|---|---|"]
for model, groups in doc["results"].items():
    for g, r in groups.items():
        score = f"{r['mean_score']:.2f}" if r["mean_score"] is not None else "-"
        iou = f"{r['mean_iou_with_mfs_box']:.2f}" if "mean_iou_with_mfs_box" in r else "-"
        lines.append(f"| {model} | {g} | {r['n']} | {r['with_box']} | {score} | {r['mean_prob_fake']:.2f} | {iou} |")
display(Markdown("\n".join(lines)))
