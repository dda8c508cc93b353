"""Shared fixtures for the whole test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Absolute PYTHONPATH entries: the CLI tests start `python -m iid.<entry>` in a temporary folder,
    where `PYTHONPATH=src` (a worktree's run) would no longer point at src/ and the subprocess would
    import the venv's editable install (another checkout's code) instead of the code under test."""
    entries = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    if entries:
        os.environ["PYTHONPATH"] = os.pathsep.join(str(Path(e).resolve()) for e in entries)


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


@pytest.fixture(scope="session")
def synthetic_stores(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`paths.stores` holding the tiny benchmark's frame stores (FF++ train/val/test, Celeb-DF, DFDC test),
    prepared once per session with the data group's defaults, as a run's first use prepares them.

    Shared by the training, peer, analysis and evaluation tests (each prepared its own identical copy,
    576 MB each). Do not change or delete what is in it: a test that prepares or deletes stores of the
    synthetic data set uses its own folder (the LFW probe only adds `lfw/` beside it, as a run would).
    """
    from hydra import compose, initialize_config_module

    from iid.engine.config import plain_config
    from iid.engine.data import ensure_data

    stores = tmp_path_factory.mktemp("stores")
    root = synthetic_root
    overrides = ["data=synthetic", f"data.synth.out={root}", "data.synth.size=tiny", f"data.root={root}/FaceForensics++",
                 f"data.cross.celebdf.root={root}/Celeb-DF-v2", f"data.cross.dfdc.root={root}/DFDC",
                 f"paths.stores={stores}", "prepare.workers=1", "prepare.progress=false"]  # fmt: skip
    with initialize_config_module("iid.conf", version_base="1.3"):
        ensure_data(plain_config(compose(config_name="config", overrides=overrides)))
    return stores
