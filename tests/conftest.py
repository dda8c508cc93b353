"""Shared fixtures for the whole test suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic benchmark (seed 0), generated once per test session.

    Holds `FaceForensics++/`, `Celeb-DF-v2/` and `DFDC/` in the real layouts (see docs/synthetic.md):
    8 FF++ originals x 8 frames (5 methods, masks for 4), Celeb-DF 4 identities x 3 videos + 2
    YouTube-real + 12 fakes, DFDC 4 real + 4 fake; every .mp4 has a `<stem>.landmarks.npy` sidecar.
    Treat it as read-only: it is shared by every test in the session.
    """
    from iid.synth import generate

    return generate(tmp_path_factory.mktemp("synthetic"), scale="tiny", seed=0)
