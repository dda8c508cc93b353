"""The ID probe: its split never shares a frame, random features give chance, identity features ~100%."""

from __future__ import annotations

import numpy as np
import pytest

from iid.analysis.probe import ProbeSettings, fit_probe, probe_set, split_rows


def layout(n_ids: int, videos: int, frames: int):
    """identity, video, frame columns of n_ids people with `videos` videos of `frames` frames each."""
    ident, vid, fr = [], [], []
    for i in range(n_ids):
        for v in range(videos):
            for f in range(frames):
                ident.append(f"p{i}")
                vid.append(f"ds/real/p{i}_{v}")
                fr.append(f * 3)
    return np.array(ident, dtype=object), np.array(vid, dtype=object), np.array(fr)


def test_split_by_video_holds_out_whole_videos():
    ident, vid, fr = layout(5, 3, 4)
    train, test, how = split_rows(ident, vid, fr, "auto", 0.3)
    assert not (train & test).any() and (train | test).all()
    assert how == {"by_video": 5, "by_frame": 0, "dropped": 0}
    assert not set(vid[train]) & set(vid[test])  # no video on both sides
    for p in set(ident):
        assert (ident[test] == p).any() and (ident[train] == p).any()  # every person on both sides


def test_single_video_identities_split_in_time():
    ident, vid, fr = layout(4, 1, 10)
    train, test, how = split_rows(ident, vid, fr, "auto", 0.3)
    assert how["by_frame"] == 4 and not (train & test).any()
    for v in set(vid):
        assert fr[train & (vid == v)].max() < fr[test & (vid == v)].min()  # test = the last frames
        assert (test & (vid == v)).sum() == 3


def test_unsplittable_and_excluded_identities_are_dropped():
    ident = np.array(["a", "a", "b", "", ""], dtype=object)
    vid = np.array(["v1", "v1", "v2", "v3", "v3"], dtype=object)
    fr = np.array([0, 1, 0, 0, 1])
    train, test, how = split_rows(ident, vid, fr)
    assert how["dropped"] == 1 and how["by_frame"] == 1
    assert not train[2:].any() and not test[2:].any()
    # forced video split: a one-video identity cannot be split
    assert split_rows(ident, vid, fr, "video")[2]["dropped"] == 2


def test_random_features_give_chance():
    rng = np.random.default_rng(0)
    ident, vid, fr = layout(10, 3, 8)
    x = rng.normal(size=(len(ident), 64)).astype(np.float32)
    res = probe_set(x, ident, vid, fr, ProbeSettings(epochs=60), seed=0)
    assert res["identities"] == 10 and abs(res["chance"] - 0.1) < 1e-9
    assert res["final_train_acc"] > 0.3  # it fits its training frames...
    assert res["final_test_acc"] < 0.1 + 0.12  # ...but nothing transfers to held-out videos


def test_identity_features_give_near_perfect_accuracy():
    rng = np.random.default_rng(1)
    ident, vid, fr = layout(10, 3, 8)
    centres = rng.normal(size=(10, 64)) * 2
    x = centres[[int(i[1:]) for i in ident]] + rng.normal(size=(len(ident), 64))
    res = probe_set(x.astype(np.float32), ident, vid, fr, ProbeSettings(epochs=30), seed=0)
    assert res["final_test_acc"] > 0.95
    h = res["history"]
    assert h["epoch"] == list(range(1, 31)) and len(h["test_acc"]) == 30


def test_fit_probe_is_deterministic():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 8)), rng.integers(0, 4, 40)
    a = fit_probe(x[:30], y[:30], x[30:], y[30:], epochs=5, seed=3)
    b = fit_probe(x[:30], y[:30], x[30:], y[30:], epochs=5, seed=3)
    assert a == b


def test_held_out_frames_carry_their_video_and_correctness_and_do_not_depend_on_the_features():
    rng = np.random.default_rng(3)
    ident, vid, fr = layout(6, 3, 5)
    a = probe_set(rng.normal(size=(len(ident), 16)).astype(np.float32), ident, vid, fr, ProbeSettings(epochs=10))
    b = probe_set(rng.normal(size=(len(ident), 16)).astype(np.float32), ident, vid, fr, ProbeSettings(epochs=10))
    ha, hb = a["held_out"], b["held_out"]
    train, test, _ = split_rows(ident, vid, fr)
    assert list(ha["video"]) == list(vid[test]) and list(ha["frame"]) == list(fr[test])
    assert len(ha["correct"]) == a["test_frames"] and set(ha["correct"]) <= {0, 1}
    assert np.mean(ha["correct"]) == pytest.approx(a["final_test_acc"])  # the accuracy the JSON reports
    # the split is the data's, not the model's: another model is tested on the same frames (paired)
    assert list(hb["video"]) == list(ha["video"]) and list(hb["frame"]) == list(ha["frame"])
    assert not set(ha["video"]) & set(vid[train])  # three videos per person: whole videos held out
