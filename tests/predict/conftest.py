"""Fixtures of the predict tests: tiny checkpoints (random weights: the tests check the plumbing, not
the detector) and a folder of inputs, good and bad."""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

import python_cli

ASTRONAUT = "astronaut.png"
GRACE = "grace_hopper.jpg"


def photo(name: str) -> Path:
    """The astronaut (scikit-image) and Grace Hopper (matplotlib) photographs, inside installed wheels."""
    if name == ASTRONAUT:
        import skimage

        return Path(skimage.__file__).parent / "data" / "astronaut.png"
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def save_checkpoint(path: Path, overrides: list[str]) -> Path:
    """`{"state_dict", "iid_config"}` of a freshly built DetectorModule (what iid.train's best.ckpt holds)."""
    import torch
    from hydra import compose, initialize_config_module

    from iid.engine.config import plain_config
    from iid.module import DetectorModule

    with initialize_config_module("iid.conf", version_base="1.3"):
        cfg = plain_config(compose("config", overrides=overrides))
    torch.manual_seed(0)
    module = DetectorModule(cfg, pretrained=False)
    torch.save({"state_dict": module.state_dict(), "iid_config": module.config}, path)
    return path


def weights_key(net, like) -> tuple:
    """What `freeze(net, like)` depends on: the network's class and exact weights, and the input's
    shape, layout, dtype and device (it traces a random input of that form)."""
    import torch

    digest = hashlib.blake2b(digest_size=16)
    for name, t in net.state_dict().items():
        digest.update(name.encode())
        digest.update(t.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    layout = like.is_contiguous(memory_format=torch.channels_last)
    return type(net).__qualname__, tuple(like.shape[1:]), layout, like.dtype, str(like.device), digest.hexdigest()


@pytest.fixture(scope="module", autouse=True)
def freeze_each_network_once():
    """Every predict() builds a Scorer that traces and freezes its network (jit=true, the default):
    seconds per call, the same result each time for the same checkpoint. Within a predict test module
    `freeze` runs once per distinct network and input form; later calls get that frozen network (a pure
    function of what weights_key holds), and dlib's detector and 68-point model file are loaded once.
    Module scope: the patches end with the predict test module."""
    import dlib

    from iid.inference import scoring

    real_freeze, frozen = scoring.freeze, {}

    def freeze_once(net, like):
        key = weights_key(net, like)
        if key not in frozen:
            frozen[key] = real_freeze(net, like)
        return frozen[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scoring, "freeze", freeze_once)
        mp.setattr(dlib, "shape_predictor", functools.lru_cache(maxsize=4)(dlib.shape_predictor))
        mp.setattr(dlib, "get_frontal_face_detector", functools.lru_cache(maxsize=1)(dlib.get_frontal_face_detector))
        yield


@pytest.fixture(scope="session")
def caddm_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "caddm.ckpt", ["backbone=test_resnet", "model.adm.width=128"]
    )


@pytest.fixture(scope="session")
def binary_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "binary.ckpt", ["backbone=test_resnet", "model=binary"]
    )


@pytest.fixture(scope="session")
def pair(synthetic_root: Path) -> dict[str, Path]:
    """A synthetic FF++ fake and its original (the fake's target video)."""
    ff = synthetic_root / "FaceForensics++"
    fake = sorted((ff / "manipulated_sequences" / "Deepfakes" / "c23" / "videos").glob("*.mp4"))[0]
    real = ff / "original_sequences" / "youtube" / "c23" / "videos" / f"{fake.stem.split('_')[0]}.mp4"
    assert real.is_file()
    return {"fake": fake, "real": real}


def make_bad_inputs(folder: Path, good_video: Path) -> dict[str, Path]:
    """A truncated video (its first half: the index at the end is gone), a text file named .mp4, a
    faceless image (smooth noise), and one good image (Grace Hopper) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    data = good_video.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (folder / "notes.mp4").write_text("this is a text file, not a video\n")
    rng = np.random.default_rng(0)
    noise = cv2.resize(
        rng.integers(0, 255, (30, 40, 3), dtype=np.uint8), (400, 300), interpolation=cv2.INTER_CUBIC
    )
    cv2.imwrite(str(folder / "faceless.png"), noise)
    shutil.copy(photo(GRACE), folder / "grace.jpg")
    return {k: folder / k for k in ("truncated.mp4", "notes.mp4", "faceless.png", "grace.jpg")}


@pytest.fixture
def bad_folder(tmp_path: Path, pair: dict[str, Path]) -> Path:
    make_bad_inputs(tmp_path / "inputs", pair["fake"])
    return tmp_path / "inputs"


def run_predict(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return python_cli.run("iid.predict", args, cwd=cwd, env={**python_cli.cli_env(), "OMP_NUM_THREADS": "1"},
                          timeout=timeout)  # fmt: skip


@pytest.fixture(scope="session")
def cli():
    """run_predict(args, cwd) -> CompletedProcess of `python -m iid.predict <args>`."""
    return run_predict


@pytest.fixture(scope="session")
def bad_inputs():
    return make_bad_inputs


@pytest.fixture(scope="session")
def photos():
    return photo
