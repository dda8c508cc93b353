"""`python -m iid.synth out=DIR [scale=tiny|small|default] [seed=N] [workers=N]`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from iid.errors import UserError, exit_on_user_error

USAGE = """usage: python -m iid.synth out=DIR [scale=tiny|small|default] [seed=N] [workers=N]

Writes the embedded procedural benchmark: DIR/FaceForensics++, DIR/Celeb-DF-v2, DIR/DFDC in the
real layouts, every video with a <stem>.landmarks.npy sidecar (68 landmarks per frame).
  out      output folder (default: data/synthetic)
  scale    tiny (tests, seconds), small (default training run), default (~100 FF++ originals x 32 frames)
  seed     non-negative integer (default 0); the same seed gives the same benchmark
  workers  processes (default: all cores)"""


def parse(argv: list[str]) -> dict:
    args: dict = {"out": "data/synthetic", "scale": "default", "seed": "0", "workers": None}
    for a in argv:
        key, sep, value = a.partition("=")
        key = key.lstrip("+")
        if not sep or key not in args:
            raise UserError(f"bad argument {a!r}; expected key=value with key in out, scale, seed, workers (see --help)")
        if not value:
            raise UserError(f"empty value for {key}=")
        args[key] = value
    for key in ("seed", "workers"):
        if args[key] is not None:
            try:
                args[key] = int(args[key])
            except ValueError:
                raise UserError(f"{key} must be an integer, got {args[key]!r}") from None
    if args["workers"] is not None and args["workers"] < 1:
        raise UserError("workers must be at least 1")
    args["out"] = Path(args["out"])
    return args


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help", "help") for a in argv):
        print(USAGE)
        return
    args = parse(argv)
    from iid.synth import generate

    t0 = time.perf_counter()
    out = generate(args["out"], args["scale"], args["seed"], args["workers"])
    print(f"wrote scale={args['scale']} seed={args['seed']} to {out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
