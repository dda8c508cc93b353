"""The embedded procedural benchmark: face videos with identities and face swaps in the FF++,
Celeb-DF-v2 and DFDC layouts (`python -m iid.synth out=DIR size=... seed=...`)."""

from iid.synth.build import SCALES, ensure, generate, is_complete

__all__ = ["SCALES", "ensure", "generate", "is_complete"]
