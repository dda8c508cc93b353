"""Shared fixtures for the whole test suite."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

sys.path.insert(0, str(Path(__file__).parent))  # python_cli, for the conftests below (importlib mode)
import python_cli  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Absolute PYTHONPATH entries: the CLI tests start `python -m iid.<entry>` in a temporary folder,
    where `PYTHONPATH=src` (a worktree's run) would no longer point at src/ and the subprocess would
    import the venv's editable install (another checkout's code) instead of the code under test."""
    entries = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    if entries:
        os.environ["PYTHONPATH"] = os.pathsep.join(str(Path(e).resolve()) for e in entries)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # `make test` runs one pytest-xdist worker per core: one torch thread each, in the worker and in
        # the CLIs it starts (they read OMP_NUM_THREADS), since two 2-thread processes on 2 cores slow
        # each other far more than 2x
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
    python_cli.freeze_session_env()  # the CLI runs' environment: this one, whatever tests change later


# hundreds of sub-second tests, run last. Under pytest-xdist's worksteal a worker that has run out of
# tests takes only tests another has not started, so a run ends when its last long test does: ending
# on these, the workers end together (in collection order one sat idle 21 s of a 314 s run)
RUN_LAST = ("tests/test_configs.py", "tests/test_hints.py", "tests/test_did_you_mean.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid.split("::")[0] in RUN_LAST)  # stable: the rest keeps its order


@pytest.fixture(autouse=True)
def _torch_threads_left_as_found():
    """Every test leaves torch's thread count as it found it. An in-process entry point that raised it
    (predict did, to 2) left a pytest-xdist worker at 2 threads beside the other worker for the rest of
    the run: later tests in it ran 3-4x slower (a 14 s test took 57 s)."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None and before is not None and torch.get_num_threads() != before:
        after = torch.get_num_threads()
        torch.set_num_threads(before)
        pytest.fail(f"the test left torch at {after} threads (it found {before})", pytrace=False)


def _as_json(value):
    return {k: str(v) for k, v in value.items()} if isinstance(value, dict) else str(value)


def _from_json(value):
    return {k: Path(v) for k, v in value.items()} if isinstance(value, dict) else Path(value)


@pytest.fixture(scope="session")
def build_once(tmp_path_factory: pytest.TempPathFactory) -> Callable:
    """build_once(name, build) -> what `build(folder)` returned (a Path or a dict of Paths), built once per
    test run. Under pytest-xdist every worker is a session of its own; the expensive fixtures (benchmark,
    stores, trained runs, analyses) are then built by the first worker that asks, under a file lock in
    the folder the workers share, and read by the others, instead of once per worker."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base

    def once(name: str, build: Callable[[Path], object]):
        folder, done = shared / f"shared-{name}", shared / f"shared-{name}.json"
        with FileLock(str(shared / f"shared-{name}.lock")):
            if not done.is_file():
                shutil.rmtree(folder, ignore_errors=True)  # a half-built one from a worker that failed
                folder.mkdir()
                done.write_text(json.dumps(_as_json(build(folder))))
        return _from_json(json.loads(done.read_text()))

    return once


@pytest.fixture(scope="session")
def python_m() -> Callable:
    """python_m(module, args, cwd, env=None, timeout=600) -> CompletedProcess of `python -m <module> <args>`,
    forked from a pre-warmed interpreter (tests/python_cli.py) instead of paying its start-up each time."""
    return python_cli.run


@pytest.fixture(scope="session")
def synthetic_root(build_once: Callable) -> Path:
    """A tiny synthetic benchmark (seed 0), generated once per test run (shared by the xdist workers).

    Holds `FaceForensics++/`, `Celeb-DF-v2/` and `DFDC/` in the real layouts (see docs/synthetic.md):
    8 FF++ originals x 8 frames (5 methods, masks for 4), Celeb-DF 4 identities x 3 videos + 2
    YouTube-real + 12 fakes, DFDC 4 real + 4 fake; every .mp4 has a `<stem>.landmarks.npy` sidecar.
    Treat it as read-only: it is shared by every test in the session.
    """
    from iid.synth import generate

    return build_once("synthetic", lambda folder: generate(folder, scale="tiny", seed=0))


@pytest.fixture(scope="session")
def synthetic_stores(synthetic_root: Path, build_once: Callable) -> Path:
    """`paths.stores` holding the tiny benchmark's frame stores (FF++ train/val/test, Celeb-DF, DFDC test),
    prepared once per test run (shared by the xdist workers) with the data group's defaults, as a run's
    first use prepares them.

    Shared by the training, peer, analysis and evaluation tests (each prepared its own identical copy,
    576 MB each). Do not change or delete what is in it: a test that prepares or deletes stores of the
    synthetic data set uses its own folder (the LFW probe only adds `lfw/` beside it, as a run would).
    """
    from hydra import compose, initialize_config_module

    from iid.engine.config import plain_config
    from iid.engine.data import ensure_data

    def prepare(stores: Path) -> Path:
        root = synthetic_root
        overrides = ["data=synthetic", f"data.synth.out={root}", "data.synth.size=tiny",
                     f"data.root={root}/FaceForensics++", f"data.cross.celebdf.root={root}/Celeb-DF-v2",
                     f"data.cross.dfdc.root={root}/DFDC", f"paths.stores={stores}", "prepare.workers=1",
                     "prepare.progress=false"]  # fmt: skip
        with initialize_config_module("iid.conf", version_base="1.3"):
            ensure_data(plain_config(compose(config_name="config", overrides=overrides)))
        return stores

    return build_once("stores", prepare)
