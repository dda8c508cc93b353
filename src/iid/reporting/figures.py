"""What every image-grid figure of the suite shares (MFS, SBI, Grad-CAM grids): a headless pyplot,
box outlines in pixel coordinates, and one way to finish and write a grid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display on servers and in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_box(ax, box, color: str, **kw) -> None:
    """Outline box x0y0x1y1 (pixel edges) on an imshow axis."""
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = (float(v) for v in box)
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.5, ec=color, **kw))


def save_grid(fig, axes, out: str | Path, titles: Sequence[str] = (), dpi: int = 80) -> Path:
    """Title the first row, drop the ticks, write the PNG (folders made), close the figure."""
    for j, name in enumerate(titles):
        axes[0, j].set_title(name, fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out
