"""`python -m iid.synth out=DIR [size=tiny|small|mini|default] [seed=N] [workers=N]` (conf/synth.yaml)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iid.engine.cli import hydra_entry
from iid.settings import bounds, plain, settings


@dataclass(frozen=True)
class SynthArgs:
    out: str = "data/synthetic"
    size: str = field(default="default", metadata=bounds(choices=("tiny", "small", "mini", "default")))
    seed: int = field(default=0, metadata=bounds(0))
    workers: int | None = field(default=None, metadata=bounds(1, type=int))


def synth(cfg: Any) -> Path:
    from iid.synth import generate

    a = settings(SynthArgs, "synth", {k: v for k, v in plain(cfg).items() if k != "paths"})
    t0 = time.perf_counter()
    out = generate(Path(a.out), a.size, a.seed, a.workers)
    print(f"wrote size={a.size} seed={a.seed} to {out} in {time.perf_counter() - t0:.1f} s")
    return out


def main(argv: list[str] | None = None) -> None:
    hydra_entry("synth", synth, argv)


if __name__ == "__main__":
    main()
