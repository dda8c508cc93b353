"""`python -m iid.analyze <analysis> ckpt=PATH|[PATH,...] [data=<name>] [sets=[...]] [out=DIR] [analysis.<key>=...]`

One entry point for the paper's analyses (src/iid/analysis, docs/analyses.md): probe, interaction,
overlap, tsne, visual. The first argument names the analysis (the same as `analysis=<name>`, the
config group conf/analysis/<name>.yaml); `-m analysis=probe,overlap,tsne` runs several.
Results: `<out>/<analysis>/<analysis>.json`, CSV tables and PNG figures (W&B too with logger=wandb).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from iid.engine.cli import hydra_entry

__all__ = ["main"]


def _job(cfg):
    from iid.analysis.runner import analyze

    return analyze(cfg)


def normalise_argv(argv: Sequence[str]) -> list[str]:
    """`probe ckpt=...` -> `analysis=probe ckpt=...` (a bare first word names the analysis)."""
    argv = list(argv)
    if argv and "=" not in argv[0] and not argv[0].startswith("-"):
        argv[0] = f"analysis={argv[0]}"
    return argv


def main(argv: Sequence[str] | None = None) -> None:
    hydra_entry("analyze", _job, normalise_argv(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
