"""The engine every entry point shares (`python -m iid.train|evaluate|prepare|predict|...`).

- cli:         the Hydra entry wrapper; bad overrides and UserErrors end in one `error:` line, exit 2
- config:      the composed config as typed settings (budget, eval protocol, hardware, checkpoints)
               and the upgrade of configs stored in older checkpoints
- data:        the preparation plan (which stores a run needs, built on first use) and the DataModule
- trainer:     pl.Trainer from the trainer group, the checkpoint callbacks, the run-directory lock
- checkpoints: reading checkpoints (one line when unreadable) and choosing the resume point
- loggers:     CSV always, W&B (offline unless logged in)
- results:     results.json/.csv, per-frame predictions, the printed table
- jobs:        train (fit + test) and evaluate, the two flows the entry points call
- threads:     torch's thread count for a block, put back after it (in-process calls leave it as it was)
"""
