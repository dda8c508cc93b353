"""`python -m iid.evaluate ckpt=PATH [data=<name>] [test_sets=[...]] [eval.test_frames=N] [trainer=<name>]`

Rebuilds the model from the config stored in the checkpoint (weights_only load), evaluates it on
the test sets of the checkpoint's data config (or of `data=<name>`) with the checkpoint's eval
protocol (or the `eval.*` values given), and writes results.json / results.csv / predictions to
`out`. With the defaults it reproduces the numbers the training run reported for that checkpoint.
"""

from __future__ import annotations

from iid.engine.cli import hydra_entry
from iid.engine.jobs import evaluate

__all__ = ["evaluate", "main"]


def main() -> None:
    hydra_entry("evaluate", evaluate)


if __name__ == "__main__":
    main()
