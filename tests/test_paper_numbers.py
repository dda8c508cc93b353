"""The paper numbers added for the scorecard, checked against each other where the papers repeat or
derive them (a typo in a transcription breaks one of these)."""

from __future__ import annotations

import csv

import pytest

from iid.reporting.tables import PAPER_DIR


def _read(name: str) -> dict[tuple[str, str, str], float]:
    with open(PAPER_DIR / f"{name}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(list(r) == ["table", "row", "column", "metric", "level", "value"] for r in rows)
    assert all(0 <= float(r["value"]) <= 1 and r["level"] in ("video", "frame") for r in rows)
    out = {(r["row"], r["column"], f"{r['level']}_{r['metric']}"): float(r["value"]) for r in rows}
    assert len(out) == len(rows)  # no cell twice
    return out


def test_iil_table1_interaction_auc_is_above_chance_in_dataset_and_below_across():
    t1 = _read("table1_interaction")
    backbones = ("resnet18", "resnet34", "resnet50", "xception", "efficientnet_b3")
    assert set(t1) == {(b, c, "frame_auc") for b in backbones for c in ("ffpp", "celebdf")}
    assert all(t1[(b, "ffpp", "frame_auc")] > 0.5 > t1[(b, "celebdf", "frame_auc")] for b in backbones)  # §3.2's text


def test_etd_table5_repeats_its_table4():
    t5, t4 = _read("etd_table5"), _read("etd_table4")
    for col in ("ffpp", "celebdf"):  # ResNet-34 with both losses is Table 4's full model
        for m in ("frame_auc", "frame_acc"):
            assert t5[("ResNet-34", col, m)] == pytest.approx(t4[("L_LIL + L_GIL", col, m)])
        assert t5[("ResNet-34", col, "frame_auc")] >= max(t5[(b, col, "frame_auc")] for b in ("MobileNet-V1", "EfficientNet-B0"))


def test_etd_table6_average_row_is_the_mean_of_its_perturbations():
    t6 = _read("etd_table6")
    for k in range(1, 6):
        col = f"level{k}"
        mean = sum(t6[(p, col, "frame_auc")] for p in ("contrast", "saturation", "compression")) / 3
        assert t6[("average", col, "frame_auc")] == pytest.approx(mean, abs=0.0015)  # the paper rounds to 3 places
        assert t6[("none", col, "frame_auc")] == 0.983


def test_table5_dfdc_half_numbers():
    t5 = _read("table5_cross")
    assert t5[("DFDC-trained resnet34: binary", "dfdc", "video_auc")] == 0.9249
    assert t5[("DFDC-trained efficientnet_b3: ours", "ffpp", "video_auc")] == 0.8443
    for b in ("resnet34", "efficientnet_b3"):  # the paper: ours generalizes better in both directions
        for prefix, cross in (("", "dfdc"), ("DFDC-trained ", "ffpp")):
            assert t5[(f"{prefix}{b}: ours", cross, "video_auc")] > t5[(f"{prefix}{b}: binary", cross, "video_auc")]
