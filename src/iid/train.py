"""`python -m iid.train [model=caddm|binary] [backbone=resnet34] [mfs=on|off] [da=on|off] [data=synthetic] ...`

Trains the detector, picks the best checkpoint on the validation split, evaluates it on every test
set of `data.test_sets` and writes results.json / results.csv / predictions in the run directory.
With data=synthetic (the default) the embedded benchmark is generated and its frame stores prepared
on first use. Re-running with the same `run_dir` resumes from its last.ckpt (or, when the run has
finished, returns its results). `-m` sweeps (`-m experiment=table2`) run one job per combination.
"""

from __future__ import annotations

from iid.engine.cli import hydra_entry
from iid.engine.config import check_config
from iid.engine.jobs import train as run

__all__ = ["main", "run"]


def main() -> None:
    hydra_entry("config", run, validate=check_config)


if __name__ == "__main__":
    main()
