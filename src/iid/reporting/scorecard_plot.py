"""The scorecard as a forest plot: one line per measured comparison, our difference with its 95%
interval coloured by verdict, the paper's difference beside it, zero marked; gaps are left out
(they are listed in the Markdown and the CSV)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from iid.reporting.scorecard_analyses import METRICS
from iid.reporting.scorecard_line import Line
from iid.reporting.tables import column_title

COLOURS = {"confirmed": "#1a9850", "contradicted": "#d73027", "unresolved": "#7f7f7f", "no direction": "#4575b4"}


def forest(lines: Sequence[Line], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [line for line in lines if line.ours is not None and line.gap is None]
    labels = []
    for line in shown:
        # an analysis' artifact names its measure; a table line adds its level (video or frame)
        level = "" if line.metric in METRICS.values() else f" · {line.metric.split('_')[0]}"
        labels.append(f"{line.artifact}: {line.comparison} · {column_title(line.column)}{level}")
    # the labels take ~0.06 in a character at size 7: the plot keeps ~5 in beside the longest one
    height = 1.6 + 0.24 * max(len(shown), 1)
    fig, ax = plt.subplots(figsize=(max(9.0, 5.0 + 0.06 * max(map(len, labels), default=0)), height))
    for i, line in enumerate(shown):
        c = line.ours
        ax.errorbar([c.mean], [i], xerr=[[c.mean - c.low], [c.high - c.mean]], fmt="o", ms=4, capsize=2,
                    color=COLOURS.get(line.verdict, "black"))  # fmt: skip
        if line.paper_diff is not None:
            ax.plot([line.paper_diff], [i], "x", color="black", ms=5)
        if i and shown[i - 1].artifact != line.artifact:
            ax.axhline(i - 0.5, color="black", lw=0.5, alpha=0.4)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(shown)), labels, fontsize=7)
    ax.set_ylim(len(shown) - 0.5, -0.5)
    ax.set_xlabel("difference (o ours, 95% interval; x the paper): in AUC; for the analyses\n"
                  "in ID probe accuracy, in ID overlap rate, or AUC of I([N]) − 0.5")  # fmt: skip
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=v) for v, c in COLOURS.items()]
    handles.append(plt.Line2D([], [], marker="x", ls="", color="black", label="paper"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside, not over, the lines
    fig.suptitle(title, fontsize=9, wrap=True)  # over the whole figure: the long labels take the left half
    ax.grid(axis="x", alpha=0.3)
    if not shown:
        ax.text(0.5, 0.5, "no comparison measured yet", transform=ax.transAxes, ha="center")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / height))  # the top half inch is the title's
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the longest label whole, whatever tight_layout left
    plt.close(fig)
