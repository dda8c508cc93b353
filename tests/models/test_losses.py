import math

import pytest
import torch
import torch.nn.functional as F

from iid.models.losses import ClassificationLoss, DetectorLoss, MultiBoxLoss
from iid.models.output import ModelOutput

# four hand-made anchors (cx, cy, w, h): the whole image and three small disjoint boxes
ANCHORS = torch.tensor(
    [[0.5, 0.5, 1.0, 1.0], [0.1, 0.1, 0.1, 0.1], [0.5, 0.1, 0.1, 0.1], [0.9, 0.1, 0.1, 0.1]]
)
WHOLE = torch.tensor([[0.0, 0.0, 1.0, 1.0]])


def softplus(z: float) -> float:
    return math.log1p(math.exp(z))


def tiny_case():
    # logits [genuine, artifact]; anchor 0 is the positive, 1..3 are negatives of losses sp(2), sp(0), sp(1)
    conf = torch.tensor([[[0.0, 1.0], [0.0, 2.0], [0.0, 0.0], [0.0, 1.0]]], requires_grad=True)
    # offsets: positive predicts (0.5, -2, 0, 0) against target 0; negatives' offsets must not count
    loc = torch.tensor(
        [[[0.5, -2.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0], [9.0] * 4, [9.0] * 4]], requires_grad=True
    )
    return loc, conf


def test_multibox_loss_by_hand_with_two_hard_negatives_per_positive():
    loc, conf = tiny_case()
    loss = MultiBoxLoss(ANCHORS, threshold=0.5, neg_pos_ratio=2)
    result = loss(loc, conf, WHOLE, torch.tensor([True]))
    assert int(result.num_pos) == 1
    assert int(result.num_neg) == 2  # anchors 1 and 3 (the hardest), not anchor 2
    expected_conf = softplus(-1.0) + softplus(2.0) + softplus(1.0)
    assert result.conf.item() == pytest.approx(expected_conf, rel=1e-6)
    expected_loc = 0.5 * 0.5**2 + (2.0 - 0.5)  # Smooth L1 (beta 1) of 0.5 and -2
    assert result.loc.item() == pytest.approx(expected_loc, rel=1e-6)
    # neg_pos_ratio 1 keeps only the hardest negative
    one = MultiBoxLoss(ANCHORS, neg_pos_ratio=1)(loc, conf, WHOLE, torch.tensor([True]))
    assert int(one.num_neg) == 1
    assert one.conf.item() == pytest.approx(softplus(-1.0) + softplus(2.0), rel=1e-6)


def test_detector_loss_by_hand():
    loc, conf = tiny_case()
    logits = torch.tensor([[0.3, -0.2]])
    out = ModelOutput(logits, torch.zeros(1, 8), {"loc": loc, "conf": conf})
    batch = {"label": torch.tensor([1]), "boxes": WHOLE, "has_box": torch.tensor([True])}
    parts = DetectorLoss(alpha=2.0, beta=0.1, anchors=ANCHORS)(out, batch)
    cls = F.cross_entropy(logits, torch.tensor([1])).item()
    conf_sum = softplus(-1.0) + softplus(2.0) + softplus(1.0)
    loc_sum = 0.125 + 1.5
    assert parts["loss"].item() == pytest.approx(cls + 0.1 * (conf_sum + 2.0 * loc_sum) / 1, rel=1e-6)
    assert parts["cls"].item() == pytest.approx(cls, rel=1e-6)
    assert parts["num_pos"].item() == 1 and parts["num_neg"].item() == 2
    parts["loss"].backward()
    assert conf.grad[0, 2].abs().sum() == 0  # the unmined negative gets no gradient
    assert loc.grad[0, 1:].abs().sum() == 0  # negatives' offsets get no gradient


def test_negatives_are_twice_the_positives_on_default_anchors():
    g = torch.Generator().manual_seed(0)
    conf = torch.randn(3, 168, 2, generator=g)
    loc = torch.randn(3, 168, 4, generator=g)
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.5, 0.7], [0.0, 0.0, 0.0, 0.0]])
    has_box = torch.tensor([True, True, False])
    result = MultiBoxLoss()(loc, conf, boxes, has_box)
    assert int(result.num_pos) >= 3  # 2 for the whole image, >= 1 (forced) for the window
    assert int(result.num_neg) == 2 * int(result.num_pos)


def test_real_only_batch_has_zero_detection_term_but_stays_in_the_graph():
    conf = torch.randn(2, 168, 2, requires_grad=True)
    loc = torch.randn(2, 168, 4, requires_grad=True)
    logits = torch.randn(2, 2, requires_grad=True)
    out = ModelOutput(logits, torch.zeros(2, 8), {"loc": loc, "conf": conf})
    labels = torch.tensor([0, 0])
    parts = DetectorLoss()(out, {"label": labels, "boxes": torch.zeros(2, 4), "has_box": torch.tensor([False, False])})
    assert parts["num_pos"].item() == 0 and parts["num_neg"].item() == 0
    assert parts["det"].item() == 0.0
    assert parts["loss"].item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    parts["loss"].backward()
    assert conf.grad is not None and torch.all(conf.grad == 0)
    assert loc.grad is not None and torch.all(loc.grad == 0)


def test_batch_mining_takes_hard_negatives_from_real_images():
    # image 0 fake (positive anchor 0, easy negatives); image 1 real with very hard negatives
    conf = torch.tensor(
        [
            [[0.0, 1.0], [0.0, -5.0], [0.0, -5.0], [0.0, -5.0]],
            [[0.0, 5.0], [0.0, 6.0], [0.0, -5.0], [0.0, -5.0]],
        ]
    )
    loc = torch.zeros(2, 4, 4)
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    has_box = torch.tensor([True, False])
    per_image = MultiBoxLoss(ANCHORS, mining="image")(loc, conf, boxes, has_box)
    per_batch = MultiBoxLoss(ANCHORS, mining="batch")(loc, conf, boxes, has_box)
    assert int(per_image.num_neg) == int(per_batch.num_neg) == 2
    assert per_image.conf.item() == pytest.approx(softplus(-1.0) + 2 * softplus(-5.0), rel=1e-5)
    assert per_batch.conf.item() == pytest.approx(softplus(-1.0) + softplus(5.0) + softplus(6.0), rel=1e-5)


def test_binary_classifier_loss_is_cross_entropy():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    out = ModelOutput(logits, torch.zeros(2, 8))
    parts = ClassificationLoss()(out, {"label": torch.tensor([0, 1])})
    assert parts["loss"].item() == pytest.approx(F.cross_entropy(logits, torch.tensor([0, 1])).item())
    assert set(parts) == {"loss", "cls"}
    with pytest.raises(ValueError, match="ADM"):  # the detection loss without the ADM's outputs
        DetectorLoss()(out, {"label": torch.tensor([0, 1])})


def test_bad_mining_mode():
    with pytest.raises(ValueError, match="mining"):
        MultiBoxLoss(mining="global")


def test_criterion_from_the_model_config_files():
    from pathlib import Path

    from omegaconf import OmegaConf

    from iid.errors import UserError
    from iid.models.families import build_family

    conf = Path(__file__).resolve().parents[2] / "src" / "iid" / "conf"
    backbone = OmegaConf.load(conf / "backbone" / "resnet18.yaml")
    _, loss = build_family(OmegaConf.load(conf / "model" / "caddm.yaml"), backbone)
    assert (loss.alpha, loss.beta) == (1.0, 0.1)
    mb = loss.multibox
    assert (mb.threshold, mb.force_best, mb.neg_pos_ratio, mb.mining) == (0.5, True, 2.0, "image")
    assert mb.variances == (0.1, 0.2)
    _, binary = build_family(OmegaConf.load(conf / "model" / "binary.yaml"), backbone)
    assert isinstance(binary, ClassificationLoss)
    custom = {"family": "caddm", "adm": {"iou_threshold": 0.9, "beta": 0.5, "mining": "batch"}}
    _, loss = build_family(custom, backbone)
    assert (loss.multibox.threshold, loss.beta, loss.multibox.mining) == (0.9, 0.5, "batch")
    for bad, msg in [({"iou_threshold": 2}, "must be < 1"), ({"mining": "all"}, "choose one of"),
                     ({"thresold": 0.5}, "unknown key"), ({"variances": [0.1]}, "centre, size")]:
        with pytest.raises(UserError, match=msg):
            build_family({"family": "caddm", "adm": bad}, backbone)
