"""`python -m iid.prepare data=<name> data.root=DIR [prepare.workers=N] [data.landmarks=oracle]`

Builds the frame store (docs/interfaces.md) of a data set, and of the cross-data test sets named in
`data.cross` that have a root, from the raw layouts. Resumable: finished videos are skipped. The
engine is `iid.data.preparation` (`prepare_dataset(...)` is the same as a Python call).
"""

from __future__ import annotations

from typing import Any

from iid.engine.cli import hydra_entry
from iid.engine.config import check_prepare_config, plain_config
from iid.engine.data import ensure_synthetic, preparation_plan, run_plan


def prepare(cfg: Any) -> list[dict]:
    config = plain_config(cfg)
    check_prepare_config(config)
    ensure_synthetic(config)
    return run_plan(preparation_plan(config, only_missing=False), config, report=True)


def main() -> None:
    hydra_entry("prepare", prepare)


if __name__ == "__main__":
    main()
