"""CLI arguments, one-line errors, and `ensure` trusting only a complete benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iid.errors import UserError
from iid.synth import build, ensure, generate, is_complete
from iid.synth.__main__ import main


@pytest.mark.parametrize(
    "args",
    [["size=huge"], ["seed=abc"], ["seed=-3"], ["workers=0"], ["colour=red"], ["tiny"], ["+colour=red"]],
)
def test_bad_arguments_give_one_line_and_exit_2(args: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err


def test_module_entry_point_and_help(python_m, tmp_path) -> None:
    r = python_m("iid.synth", ["--help"], cwd=tmp_path, timeout=60)
    assert r.returncode == 0 and "size=tiny|small|mini|default" in r.stdout
    r = python_m("iid.synth", ["size=huge"], cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "tiny" in r.stderr


@pytest.fixture
def no_videos(monkeypatch: pytest.MonkeyPatch) -> list:
    """Generation with the video jobs left out (index files and marker only): tests the bookkeeping fast."""
    calls: list = []
    monkeypatch.setattr(build, "_jobs", lambda out, seed, spec: calls.append((out, seed, spec)) or [])
    return calls


def test_ensure_generates_once_then_trusts_the_marker(tmp_path: Path, no_videos: list) -> None:
    out = tmp_path / "bench"
    assert ensure(out, "tiny", 3) == out and len(no_videos) == 1
    assert is_complete(out, "tiny", 3)
    ensure(out, "tiny", 3)
    assert len(no_videos) == 1, "a complete benchmark is not regenerated"
    ensure(out, "small", 3)
    assert len(no_videos) == 2 and is_complete(out, "small", 3) and not is_complete(out, "tiny", 3)


def test_killed_generation_is_redone(tmp_path: Path, no_videos: list) -> None:
    out = tmp_path / "bench"
    generate(out, "tiny", 0)
    marker = json.loads((out / build.MARKER).read_text())
    marker["complete"] = False  # what a run killed midway leaves behind
    (out / build.MARKER).write_text(json.dumps(marker))
    (out / "FaceForensics++" / "stale.mp4").write_bytes(b"half a video")
    ensure(out, "tiny", 0)
    assert len(no_videos) == 2 and is_complete(out, "tiny", 0)
    assert not (out / "FaceForensics++" / "stale.mp4").exists(), "leftovers of the killed run are removed"


def test_refuses_to_overwrite_data_it_did_not_write(tmp_path: Path, no_videos: list) -> None:
    (tmp_path / "FaceForensics++").mkdir()
    with pytest.raises(UserError, match="not written by iid.synth"):
        generate(tmp_path, "tiny", 0)
    assert (tmp_path / "FaceForensics++").is_dir() and not no_videos


def test_cli_writes_the_benchmark(tmp_path: Path, no_videos: list, capsys: pytest.CaptureFixture) -> None:
    main([f"out={tmp_path / 'b'}", "size=tiny", "seed=5", "workers=1"])
    main([f"out={tmp_path / 'c'}", "size=tiny", "seed=6"])  # a second Hydra app in the same process
    assert is_complete(tmp_path / "b", "tiny", 5) and "size=tiny seed=5" in capsys.readouterr().out
    assert (tmp_path / "b/FaceForensics++/splits/train.json").is_file()
    assert (tmp_path / "b/Celeb-DF-v2/List_of_testing_videos.txt").is_file()
    assert (tmp_path / "b/DFDC/labels.csv").is_file() and is_complete(tmp_path / "c", "tiny", 6)
