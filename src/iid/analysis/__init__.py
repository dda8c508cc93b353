"""The paper's analyses of Implicit Identity Leakage, one module each (docs/analyses.md):

  probe        ID linear probe on frozen features (Fig. 2, Fig. 5b/5d)
  interaction  multivariate interaction I([N]) of a 16x16 grid of units, its frame AUC (Table 1)
  overlap      identities' overlapping regions in a 2-D PCA of the features (supplement Fig. 7)
  tsne         t-SNE of L2-normalised features by identity and real/fake (Fig. 5a/5c)
  visual       the ADM's best box after NMS, next to MFS ground truth (Fig. 6, supplement Fig. 9/10)

`python -m iid.analyze <name> ckpt=...` runs one (iid.analysis.runner); each module also exposes
its pure functions (tested on toy models) and a `plot(rows)` that the notebooks call on its CSV.
"""

from __future__ import annotations

from iid.analysis import interaction, overlap, probe, tsne, visual

ANALYSES = {
    "probe": (probe, probe.ProbeSettings),
    "interaction": (interaction, interaction.InteractionSettings),
    "overlap": (overlap, overlap.OverlapSettings),
    "tsne": (tsne, tsne.TSNESettings),
    "visual": (visual, visual.VisualSettings),
}
