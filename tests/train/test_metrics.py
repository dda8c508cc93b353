"""iid.metrics against hand-computed values, video grouping by record key, DDP de-duplication."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from iid.metrics import (
    METRIC_KEYS,
    FrameScores,
    binary_scores,
    dedupe_rows,
    detection_metrics,
    equal_error_rate,
)


def test_binary_scores_by_hand():
    prob = torch.tensor([0.1, 0.4, 0.35, 0.8])
    label = torch.tensor([0, 0, 1, 1])
    s = binary_scores(prob, label)
    # AUC: of the 4 (fake, real) pairs only (0.35, 0.4) is ordered wrongly
    assert s["auc"] == pytest.approx(0.75)
    # ACC at 0.5: predictions 0, 0, 0, 1
    assert s["acc"] == pytest.approx(0.75)
    assert s["logloss"] == pytest.approx(-(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4)
    # AP: ranked 0.8 (fake), 0.4, 0.35 (fake), 0.1 -> precision 1 at recall 1/2, 2/3 at recall 1
    assert s["ap"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # EER: threshold 0.4 gives FPR = FNR = 1/2
    assert s["eer"] == pytest.approx(0.5)


def test_eer_exact_and_interpolated():
    # threshold 0.6: one real (0.6) above, one fake (0.4) below: FPR = FNR = 1/4
    prob = torch.tensor([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    label = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    assert equal_error_rate(prob, label) == pytest.approx(0.25)
    # perfectly separated: 0; perfectly inverted: 1
    assert equal_error_rate(torch.tensor([0.1, 0.9]), torch.tensor([0, 1])) == pytest.approx(0.0)
    assert equal_error_rate(torch.tensor([0.9, 0.1]), torch.tensor([0, 1])) == pytest.approx(1.0)
    # interpolated: reals 0.3, 0.6; fakes 0.5, 0.8, 0.9. ROC (fpr, fnr) goes (0, 1/3) -> (1/2, 1/3)
    # on one threshold step; FPR = FNR on that segment at 1/3
    prob = torch.tensor([0.3, 0.6, 0.5, 0.8, 0.9])
    label = torch.tensor([0, 0, 1, 1, 1])
    assert equal_error_rate(prob, label) == pytest.approx(1 / 3)


def test_one_class_gives_nan_not_crash():
    with pytest.warns(UserWarning):
        s = binary_scores(torch.tensor([0.2, 0.7]), torch.tensor([1, 1]))
    assert math.isnan(s["auc"]) and s["acc"] == pytest.approx(0.5)


def test_video_auc_same_video_id_under_two_methods_is_two_videos():
    # record keys (dataset/method/video_id): 000_003 exists as a Deepfakes and as a Face2Face fake
    keys = ["ffpp/Deepfakes/000_003", "ffpp/Face2Face/000_003", "ffpp/real/000", "ffpp/real/001"]
    frames = [  # (key, prob, label)
        (keys[0], 0.9, 1), (keys[0], 0.7, 1),
        (keys[1], 0.2, 1), (keys[1], 0.4, 1),
        (keys[2], 0.5, 0), (keys[2], 0.5, 0),
        (keys[3], 0.1, 0), (keys[3], 0.3, 0),
    ]  # fmt: skip
    m = FrameScores()
    m.update(torch.arange(len(frames)), torch.tensor([f[1] for f in frames]), torch.tensor([f[2] for f in frames]),
             torch.tensor([keys.index(f[0]) for f in frames]))  # fmt: skip
    r = m.compute()
    assert r["videos"] == 4 and r["frames"] == 8
    # video scores: Deepfakes 0.8, Face2Face 0.3 vs real 0.5, 0.2 -> 3 of 4 pairs ordered
    assert r["video_auc"] == pytest.approx(0.75)
    # merging the two fakes by video id (a folder-name grouping) would give 0.55 and AUC 1.0
    merged = detection_metrics(torch.tensor([f[1] for f in frames]), torch.tensor([f[2] for f in frames]),
                               torch.tensor([0, 0, 0, 0, 1, 1, 2, 2]))
    assert merged["videos"] == 3 and merged["video_auc"] == pytest.approx(1.0)
    assert set(METRIC_KEYS) <= set(r)


def test_duplicate_rows_count_once():
    rows = torch.tensor([3, 1, 2, 1, 3])
    prob = torch.tensor([0.9, 0.2, 0.6, 0.2, 0.9])
    r, p = dedupe_rows(rows, prob)
    assert r.tolist() == [1, 2, 3] and p.tolist() == pytest.approx([0.2, 0.6, 0.9])
    a, b = FrameScores(), FrameScores()
    lab, vid = torch.tensor([1, 0, 1, 0, 1]), torch.tensor([0, 1, 2, 1, 0])
    a.update(rows, prob, lab, vid)
    b.update(rows[:3], prob[:3], lab[:3], vid[:3])
    assert a.compute() == b.compute()


DDP_WORKER = textwrap.dedent(
    """
    import json, sys, torch, torch.distributed as dist
    from iid.metrics import FrameScores
    rank, init = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    prob = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.6, 0.3])
    label = torch.tensor([0, 0, 1, 1, 1, 0])
    video = torch.tensor([0, 0, 1, 1, 2, 3])
    # rank 0 scores rows 0-3, rank 1 rows 3-5: row 3 twice (a padding duplicate), uneven sizes
    rows = torch.tensor([0, 1, 2, 3]) if rank == 0 else torch.tensor([3, 4, 5])
    m = FrameScores()
    m.update(rows, prob[rows], label[rows], video[rows])
    res = m.compute()
    preds = m.predictions()
    if rank == 0:
        print(json.dumps({"res": res, "rows": preds["row"].tolist()}))
    dist.destroy_process_group()
    """
)


def test_ddp_gather_dedupes_padding_duplicates(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER)
    init = f"file://{tmp_path / 'pg'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(r), init], stdout=subprocess.PIPE, text=True, env=env)
             for r in (0, 1)]  # fmt: skip
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    got = json.loads(outs[0].strip().splitlines()[-1])
    prob = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.6, 0.3])
    want = detection_metrics(prob, torch.tensor([0, 0, 1, 1, 1, 0]), torch.tensor([0, 0, 1, 1, 2, 3]))
    assert got["rows"] == [0, 1, 2, 3, 4, 5]
    assert got["res"]["frames"] == 6 and got["res"]["videos"] == 4
    for k in METRIC_KEYS:
        assert got["res"][k] == pytest.approx(want[k]), k
