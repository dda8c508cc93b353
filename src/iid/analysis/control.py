"""The control checkpoint of the identity analyses: a run's network as it was before training.

What a network already encodes before it is trained (an ImageNet backbone identifies people well) is
the baseline a trained checkpoint's ID probe, overlap and t-SNE are read against: Hypothesis 1 is
that *training* as a binary classifier puts identity into the features, so the binary checkpoint is
compared with the same network at its starting point, not with chance.

    python -m iid.analysis.control <run dir or .ckpt> <out> [--weights initial|random] [--seed 0]

writes, in iid.train's format, the checkpoint's model rebuilt from its stored config with
- `initial` (default): the weights training started from: the backbone's `pretrained` from its
  config (`imagenet` for the EfficientNet-Lites, loaded offline from their packages; a weights file;
  random if false), the heads (final linear, ADM) random with `--seed`;
- `random`: every weight random with `--seed` (the architecture alone).
`<out>` is a .ckpt file, or a run directory that gets `checkpoints/best.ckpt` (so `ckpt=<out>` works).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from iid.errors import exit_on_user_error

WEIGHTS = ("initial", "random")


def control_checkpoint(ckpt: str | Path, out: str | Path, weights: str = "initial", seed: int = 0) -> Path:
    """Write the control of checkpoint `ckpt` (see the module docstring) to `out`; returns the file."""
    from iid.engine.checkpoints import CONFIG_KEY, checkpoint_file, load_checkpoint
    from iid.errors import UserError
    from iid.module import DetectorModule

    if weights not in WEIGHTS:
        raise UserError(f"--weights {weights!r}: choose one of {', '.join(WEIGHTS)}")
    cfg = load_checkpoint(checkpoint_file(ckpt))[CONFIG_KEY]
    with torch.random.fork_rng(devices=[]):  # seeded heads, the caller's RNG untouched
        torch.manual_seed(seed)
        # pretrained=None: the backbone's own config decides (ImageNet, a file, or random)
        module = DetectorModule(cfg, pretrained=None if weights == "initial" else False)
    out = Path(out)
    if out.suffix != ".ckpt":
        out = out / "checkpoints" / "best.ckpt"
    out.parent.mkdir(parents=True, exist_ok=True)
    # a temporary name, renamed when complete: a full disk must not leave a truncated checkpoint behind
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        torch.save({CONFIG_KEY: module.config, "state_dict": module.state_dict()}, tmp)
    except (OSError, RuntimeError) as err:
        tmp.unlink(missing_ok=True)
        reason = (str(err).splitlines() or [type(err).__name__])[0][:160]
        raise UserError(f"cannot write the control checkpoint {out} ({reason}): free space or choose another out") from None
    tmp.replace(out)
    return out


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m iid.analysis.control", description=__doc__.splitlines()[0])
    p.add_argument("ckpt", help="a run directory (its checkpoints/best.ckpt) or a .ckpt written by iid.train")
    p.add_argument("out", help="a .ckpt file, or a run directory that gets checkpoints/best.ckpt")
    p.add_argument("--weights", choices=WEIGHTS, default="initial",
                   help="initial: the backbone's config weights (e.g. ImageNet), heads random; random: all random")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    a = p.parse_args(sys.argv[1:] if argv is None else list(argv))
    path = control_checkpoint(a.ckpt, a.out, a.weights, a.seed)
    print(f"control ({a.weights} weights, seed {a.seed}) of {a.ckpt}: {path}")


if __name__ == "__main__":
    main()
