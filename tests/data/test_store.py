import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from store_fixture import ffpp_records, write_store  # noqa: E402

from iid.data.sampling import EvalBatchSampler, RandomBatchSampler, equal_interval_rows  # noqa: E402
from iid.data.store import FrameStore  # noqa: E402
from iid.errors import UserError  # noqa: E402


@pytest.fixture
def store(tmp_path):
    recs = ffpp_records("train", [("000", "003"), ("003", "000"), ("010", "011")])
    written = write_store(tmp_path, recs, frames_per_video=3, size=16, no_source={"ffpp/FaceSwap/010_011"})
    return FrameStore(tmp_path, "ffpp", "train"), written


def test_read_batch_returns_written_rows_in_sorted_order(store):
    s, w = store
    assert len(s) == 3 * 9 and s.size == 16
    rows = np.array([20, 3, 3, 7])
    b = s.read_batch(rows)
    got = np.array([3, 3, 7, 20])
    np.testing.assert_array_equal(b["frame"], got)
    np.testing.assert_array_equal(b["image"], w["frames"][got])
    np.testing.assert_array_equal(b["face_mask"], w["masks"][got])
    np.testing.assert_array_equal(b["landmarks"], w["landmarks"][got])
    for i, r in enumerate(got):
        row = w["index"][r]
        assert s.videos[b["video"][i]].key == row["key"]
        assert s.identities[b["identity"][i]] == row["identity"]
        assert b["label"][i] == row["label"] and b["has_source"][i] == row["has_source"]
    assert b["image"].dtype == np.uint8 and b["image"].shape == (4, 16, 16, 3)
    assert b["landmarks"].dtype == np.float32 and b["landmarks"].shape == (4, 68, 2)
    for k in ("label", "identity", "video", "frame"):
        assert b[k].dtype == np.int64
    assert b["has_source"].dtype == bool
    with pytest.raises(IndexError):
        s.read_batch(np.array([len(s)]))


def test_fake_without_source_reads_zeros(store):
    s, w = store
    key = "ffpp/FaceSwap/010_011"
    rows = np.flatnonzero(s.video == s.keys.index(key))
    b = s.read_batch(rows)
    assert not b["has_source"].any() and (b["label"] == 1).all()
    assert w["sources"][rows].any()  # the file holds garbage there ...
    assert not b["source"].any()  # ... and the reader zeroes it
    with_src = np.flatnonzero(s.video == s.keys.index("ffpp/Deepfakes/000_003"))
    np.testing.assert_array_equal(s.read_batch(with_src)["source"], w["sources"][with_src])


def test_same_video_id_under_two_methods_are_two_videos(store):
    s, _ = store
    a, b = s.keys.index("ffpp/Deepfakes/000_003"), s.keys.index("ffpp/FaceSwap/000_003")
    assert a != b
    assert set(s.video[s.read_batch(np.arange(len(s)))["frame"]]) >= {a, b}


def test_store_pickles_without_copying_arrays(store):
    s, _ = store
    blob = pickle.dumps(s)
    assert len(blob) < 20_000  # the maps are reopened, not serialised
    s2 = pickle.loads(blob)
    np.testing.assert_array_equal(s2.read_batch(np.arange(5))["image"], s.read_batch(np.arange(5))["image"])


def test_missing_store_is_one_line_user_error(tmp_path):
    with pytest.raises(UserError) as e:
        FrameStore(tmp_path, "ffpp", "train")
    msg = str(e.value)
    assert "\n" not in msg and "frames.npy" in msg and "index.json" in msg and "python -m iid.prepare" in msg


def test_inconsistent_store_is_user_error(tmp_path):
    recs = ffpp_records("test", [("000", "003")])
    write_store(tmp_path, recs, frames_per_video=2)
    d = tmp_path / "ffpp" / "test"
    index = json.loads((d / "index.json").read_text())
    (d / "index.json").write_text(json.dumps(index + index[:1] * 10))  # more rows than the arrays
    with pytest.raises(UserError, match="inconsistent"):
        FrameStore(tmp_path, "ffpp", "test")


def test_equal_interval_cap_spreads_over_the_video():
    # video 0: 32 frames, video 1: 5 frames (fewer than the cap), video 2: 10 frames; shuffled rows
    video = np.r_[np.zeros(32), np.ones(5), np.full(10, 2)].astype(np.int32)
    frame = np.r_[np.arange(32), np.arange(5), np.arange(10)].astype(np.int32)
    rows = np.arange(len(video))
    perm = np.random.default_rng(0).permutation(len(rows))
    kept = equal_interval_rows(rows[perm], video[perm], frame[perm], 8)
    assert list(frame[kept[video[kept] == 0]]) == [0, 4, 8, 12, 16, 20, 24, 28]
    assert list(frame[kept[video[kept] == 1]]) == [0, 1, 2, 3, 4]
    assert list(frame[kept[video[kept] == 2]]) == [0, 1, 2, 3, 5, 6, 7, 8]
    assert len(equal_interval_rows(rows, video, frame, None)) == len(rows)


def test_eval_sampler_two_ranks_cover_every_row_once():
    rows = np.random.default_rng(1).permutation(1001)[:997]  # uneven count, not contiguous
    shards = [np.concatenate(list(EvalBatchSampler(rows, 64, rank=r, world_size=2))) for r in range(2)]
    both = np.concatenate(shards)
    assert len(both) == len(rows) == len(np.unique(both))
    assert set(both) == set(rows)
    assert abs(len(shards[0]) - len(shards[1])) <= 1
    assert [len(EvalBatchSampler(rows, 64, rank=r, world_size=2)) for r in range(2)] == [8, 8]
    # more ranks than rows: some ranks get nothing, still no duplicates
    tiny = [list(EvalBatchSampler(np.arange(2), 4, rank=r, world_size=3)) for r in range(3)]
    assert sorted(np.concatenate([b for t in tiny for b in t])) == [0, 1]


def test_random_sampler_balance_and_epochs():
    rows = np.arange(1000)
    labels = (rows < 900).astype(int)  # 90% fake
    plain = np.concatenate(list(RandomBatchSampler(rows, labels, 64, 50, seed=0)))
    assert 0.85 < labels[plain].mean() < 0.95
    s = RandomBatchSampler(rows, labels, 64, 50, balance=True, seed=0)
    e1 = np.concatenate(list(s))
    e2 = np.concatenate(list(s))
    assert 0.46 < labels[e1].mean() < 0.54 and len(e1) == 64 * 50
    assert not np.array_equal(e1, e2)  # a new epoch draws new batches
    s.set_epoch(0)
    np.testing.assert_array_equal(np.concatenate(list(s)), e1)
    # DDP: ranks draw different batches, each ceil(50 / 3) of them
    r0, r1 = (list(RandomBatchSampler(rows, labels, 8, 50, seed=0, rank=r, world_size=3)) for r in range(2))
    assert len(r0) == len(r1) == 17 and not np.array_equal(r0[0], r1[0])
