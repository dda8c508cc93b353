"""An LFW-layout folder becomes a frame store aligned by prepare's pipeline, and the probe reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iid.analysis.lfw import lfw_from_celebdf, lfw_records, lfw_store
from iid.data.faces import five_points, template
from iid.errors import UserError


@pytest.fixture(scope="module")
def lfw_dir(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lfw_from_celebdf(synthetic_root / "Celeb-DF-v2", tmp_path_factory.mktemp("lfw_src"), per_video=2)


def test_layout_and_records(lfw_dir: Path, tmp_path: Path):
    people = sorted(p.name for p in lfw_dir.iterdir())
    assert people and all(p.startswith("id") for p in people)
    first = sorted((lfw_dir / people[0]).glob("*.jpg"))
    assert first[0].name == f"{people[0]}_0001.jpg" and first[0].with_name(f"{people[0]}_0001.landmarks.npy").is_file()
    recs = lfw_records(lfw_dir.parent, min_images=2)  # the parent of lfw/ works too
    assert {r.identity for r in recs} == set(people) and all(r.label == 0 for r in recs)
    # a person with a single image cannot be on both sides of a split: left out
    lone = tmp_path / "lfw" / "Solo_Person"
    lone.mkdir(parents=True)
    (lone / "Solo_Person_0001.jpg").write_bytes(first[0].read_bytes())
    with pytest.raises(UserError, match="no person has 2"):
        lfw_records(tmp_path)
    with pytest.raises(UserError, match="no LFW layout"):
        lfw_records(tmp_path / "nowhere")


def test_store_is_aligned_like_prepare(lfw_dir: Path, tmp_path: Path):
    store = lfw_store(lfw_dir, tmp_path / "stores", landmarks="oracle")
    assert len(store) == len(lfw_records(lfw_dir)) and store.size == 256
    assert (store.label == 0).all() and set(store.identities) == {p.name for p in lfw_dir.iterdir()}
    # every face's five points land on the canonical template of the canvas (a similarity fit of 5 points)
    err = [np.abs(five_points(store.arrays["landmarks"][i]) - template(256)).max() for i in range(len(store))]
    assert max(err) < 8.0
    again = lfw_store(lfw_dir, tmp_path / "stores", landmarks="oracle")  # prepared once, then reused
    assert len(again) == len(store)


def test_probe_reads_lfw(tiny_ckpts, tiny_data, compose_cfg, lfw_dir: Path, tmp_path: Path):
    from iid.analysis.runner import analyze

    doc = analyze(compose_cfg(["analysis=probe", f"ckpt={tiny_ckpts['binary']}", f"out={tmp_path}", "sets=[celebdf]",
                               f"analysis.lfw={lfw_dir}", "analysis.lfw_landmarks=oracle", "analysis.epochs=3",
                               *tiny_data], "analyze"))  # fmt: skip
    res = doc["results"]["binary"]
    assert set(res) == {"celebdf", "lfw"} and res["lfw"]["kind"] == "cross-dataset"
    # each image is its own "video": people are split by whole images, never one image on both sides
    assert res["lfw"]["split"]["by_video"] == res["lfw"]["identities"] > 1
    stores = Path(next(o for o in tiny_data if o.startswith("paths.stores=")).split("=", 1)[1])
    assert (stores / "lfw" / "lfw" / "test" / "frames.npy").is_file()  # beside the other stores
