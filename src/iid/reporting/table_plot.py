"""The report's figure: each cell with its 95% interval beside the paper's number, or a line over
`experiment.x` per series (Fig. 8: AUC against the number of training methods)."""

from __future__ import annotations

from pathlib import Path

from iid.reporting.figures import pyplot
from iid.reporting.tables import Table, column_title


def plot(t: Table, path: Path) -> None:
    plt = pyplot()
    s = t.spec
    m = s.metrics[0]
    line = any(x is not None for x, _ in t.x.values())
    fig, axes = plt.subplots(1, len(s.columns), figsize=(4.2 * len(s.columns), 3.6), squeeze=False)
    for ax, col in zip(axes[0], s.columns):
        if line:  # one line per series over x (Fig. 8)
            series = sorted({se for _, se in t.x.values() if se})
            for se in series:
                rows = sorted((r for r, (x, sr) in t.x.items() if sr == se and (r, col, m) in t.cells), key=lambda r: t.x[r][0])
                xs = [t.x[r][0] for r in rows]
                cs = [t.cells[(r, col, m)] for r in rows]
                ax.errorbar(xs, [c.mean for c in cs], yerr=[[c.mean - c.low for c in cs], [c.high - c.mean for c in cs]],
                            marker="o", capsize=3, label=f"{se} (measured)")  # fmt: skip
                pp = [(t.x[r][0], t.paper[(r, col, m)]) for r in rows if (r, col, m) in t.paper]
                if pp:
                    ax.plot(*zip(*pp), ls="--", marker="x", alpha=0.6, label=f"{se} (paper)")
            ax.set_xlabel(s.xlabel or "x")
        else:
            ys = range(len(s.rows))
            for i, row in enumerate(s.rows):
                c = t.cells.get((row, col, m))
                if c is not None:
                    ax.errorbar([c.mean], [i], xerr=[[c.mean - c.low], [c.high - c.mean]], fmt="o", color="C0", capsize=3)
                if (row, col, m) in t.paper:
                    ax.plot([t.paper[(row, col, m)]], [i], "x", color="C3")
            ax.set_yticks(list(ys), s.rows, fontsize=8)
            ax.invert_yaxis()
            paper = f"paper, {s.paper_backbone}" if t.foreign_backbones() else "paper"
            ax.set_xlabel(f"{m.replace('_', ' ')} (o ours, 95% CI; x {paper})")
        test_set, _, methods = column_title(col).partition(" ")  # a multi-method column: one method a line
        ax.set_title("\n".join([test_set, *filter(None, [methods.replace("+", "+\n")])]), fontsize=9)
        ax.grid(alpha=0.3)
    if line:
        axes[0][0].legend(fontsize=7)
    fig.suptitle(t.heading(), fontsize=10, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
