"""A command writes nowhere but where it was asked to: prepare builds stores under its store root only,
and the synthetic benchmark is generated on first use only in its own folder (data.synth.out) when it
is missing there, never over a benchmark of another size."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from iid.errors import UserError


@pytest.fixture
def generations(monkeypatch: pytest.MonkeyPatch) -> list:
    """Benchmark generation with its video jobs left out (index files and marker only): records each
    generation, and keeps a regression from rendering a whole benchmark."""
    from iid.synth import build

    calls: list = []
    monkeypatch.setattr(build, "_jobs", lambda out, seed, spec: calls.append(Path(out)) or [])
    return calls


def listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_prepare_of_a_copy_leaves_the_benchmark_in_paths_data_alone(synthetic_root, tiny_base, compose_cfg, tmp_path,
                                                                    generations):  # fmt: skip
    from iid.prepare import prepare

    data = tmp_path / "data"
    # what `python -m iid.synth out=${paths.data}/synthetic size=tiny` writes (the session's tiny one, copied)
    shutil.copytree(synthetic_root, data / "synthetic")
    before = listing(data)
    stores = Path(next(o.split("=", 1)[1] for o in tiny_base if o.startswith("paths.stores=")))
    # data.root: a copy of the benchmark elsewhere (the session's); the default size (small); the stores
    # built from that copy already (so every video is skipped)
    summaries = prepare(compose_cfg(["data=synthetic", f"paths.data={data}", f"data.root={synthetic_root}/FaceForensics++",
                                     f"paths.stores={stores}"], "prepare"))  # fmt: skip
    assert not generations and listing(data) == before  # not regenerated at the default size, not touched
    assert len(summaries) == 3 and {s["store_root"] for s in summaries} == {str(stores / "synthetic")}


def test_a_benchmark_of_another_size_is_never_replaced(synthetic_root, compose_cfg, tmp_path, generations):
    from iid.prepare import prepare

    data = tmp_path / "data"
    shutil.copytree(synthetic_root, data / "synthetic")  # size=tiny, in the benchmark's own folder
    before = listing(data)
    with pytest.raises(UserError, match=r"of size tiny and seed 0, not small and 0: pass data.synth.size=tiny") as err:
        prepare(compose_cfg(["data=synthetic", f"paths.data={data}", f"paths.stores={tmp_path / 'stores'}"], "prepare"))
    assert "\n" not in str(err.value) and not generations and listing(data) == before
    assert not (tmp_path / "stores").exists()


def test_generated_on_first_use_only_in_its_own_missing_folder(compose_cfg, tmp_path, generations):
    from iid.engine.config import plain_config
    from iid.engine.data import ensure_synthetic
    from iid.synth import is_complete

    own = ["data=synthetic", f"paths.data={tmp_path / 'data'}", "data.synth.size=tiny", f"paths.stores={tmp_path / 's'}"]
    elsewhere = tmp_path / "copy"
    ensure_synthetic(plain_config(compose_cfg([*own, f"data.root={elsewhere}/FaceForensics++"])))
    assert not generations and not (tmp_path / "data").exists()  # data.root elsewhere: nothing generated
    ensure_synthetic(plain_config(compose_cfg(own)))  # its own folder, missing: generated there
    assert generations == [tmp_path / "data" / "synthetic"] and is_complete(tmp_path / "data" / "synthetic", "tiny", 0)
    ensure_synthetic(plain_config(compose_cfg(own)))
    assert len(generations) == 1  # complete: used as it is
