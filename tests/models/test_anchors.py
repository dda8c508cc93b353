import math

import pytest
import torch

from iid.models.anchors import centre_to_corners, decode, default_anchors, encode, iou, match

PX = 224.0


def px(*values: float) -> torch.Tensor:
    return torch.tensor(values) / PX


def test_anchor_count_and_dtype():
    anchors = default_anchors()
    assert anchors.shape == (168, 4)
    assert anchors.dtype == torch.float32


@pytest.mark.parametrize(
    "index, expected_px",
    [
        (0, (16, 16, 40, 80)),  # 7x7 map, cell (0, 0): min x max first
        (1, (16, 16, 80, 40)),  # then max x min
        (2 * (1 * 7 + 2), (80, 48, 40, 80)),  # 7x7 map, row 1, column 2: cx = 2.5*32, cy = 1.5*32
        (97, (208, 208, 80, 40)),  # last anchor of the 7x7 map
        (98, (22.5, 22.5, 80, 120)),  # first of the 5x5 map, step 45
        (98 + 2 * 5 + 1, (22.5, 67.5, 120, 80)),  # 5x5 row 1, column 0, second anchor
        (148, (37.5, 37.5, 120, 160)),  # first of the 3x3 map, step 75
        (148 + 2 * 4, (112.5, 112.5, 120, 160)),  # 3x3 centre cell
        (166, (112, 112, 224, 224)),  # the 1x1 map: the whole image, twice
        (167, (112, 112, 224, 224)),
    ],
)
def test_anchor_centres_and_sizes(index, expected_px):
    anchors = default_anchors()
    torch.testing.assert_close(anchors[index], px(*expected_px))


def test_anchor_grid_per_map():
    anchors = default_anchors() * PX
    for start, cells, step, (lo, hi) in [
        (0, 7, 32, (40, 80)),
        (98, 5, 45, (80, 120)),
        (148, 3, 75, (120, 160)),
    ]:
        block = anchors[start : start + 2 * cells * cells].view(cells, cells, 2, 4)
        centres = (torch.arange(cells) + 0.5) * step
        torch.testing.assert_close(block[:, :, 0, 0], centres.expand(cells, cells))  # cx varies along columns
        torch.testing.assert_close(block[:, :, 0, 1], centres[:, None].expand(cells, cells))  # cy along rows
        assert torch.all(block[:, :, 0, 2:] == torch.tensor([lo, hi], dtype=torch.float32))
        assert torch.all(block[:, :, 1, 2:] == torch.tensor([hi, lo], dtype=torch.float32))


def test_anchors_are_size_independent_in_normalised_coordinates():
    torch.testing.assert_close(default_anchors(448), default_anchors(224))


def test_iou_hand_values():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    b = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.25, 0.0, 0.75, 0.5]])
    torch.testing.assert_close(iou(a, b), torch.tensor([[1.0, 0.0, 1.0 / 3.0]]))


def test_encode_hand_value_and_decode_round_trip():
    anchors = default_anchors()
    # box = the first anchor shifted right by 4 px and twice as wide
    box = torch.tensor([[16 - 40 + 4, 16 - 40, 16 + 40 + 4, 16 + 40]], dtype=torch.float32) / PX
    t = encode(box.expand(168, 4), anchors)[0]
    expected = torch.tensor([4 / (0.1 * 40), 0.0, math.log(80 / 40) / 0.2, math.log(80 / 80) / 0.2])
    torch.testing.assert_close(t, expected)

    g = torch.Generator().manual_seed(0)
    x0y0 = torch.rand(5, 168, 2, generator=g) * 0.6
    boxes = torch.cat([x0y0, x0y0 + 0.05 + torch.rand(5, 168, 2, generator=g) * 0.35], dim=-1)
    torch.testing.assert_close(decode(encode(boxes, anchors), anchors), boxes, atol=1e-5, rtol=1e-5)
    # an anchor's own box encodes to zeros
    torch.testing.assert_close(
        encode(centre_to_corners(anchors), anchors), torch.zeros(168, 4), atol=1e-5, rtol=0
    )


def positives(labels: torch.Tensor) -> set[int]:
    return set(torch.nonzero(labels).flatten().tolist())


def test_whole_image_box_matches_the_1x1_anchors():
    anchors = default_anchors()
    loc_t, labels = match(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([True]), anchors)
    assert labels.shape == (1, 168) and labels.dtype == torch.int64
    assert positives(labels[0]) == {166, 167}
    torch.testing.assert_close(loc_t[0, 166:], torch.zeros(2, 4), atol=1e-6, rtol=0)


def test_window_at_a_cell_centre_matches_that_cells_anchor():
    anchors = default_anchors()
    cx, cy = 4.5 * 32, 3.5 * 32  # 7x7 map, row 3, column 4
    box = torch.tensor([[cx - 20, cy - 40, cx + 20, cy + 40]]) / PX  # 40 wide, 80 tall
    loc_t, labels = match(box, torch.tensor([True]), anchors)
    index = 2 * (3 * 7 + 4)
    assert positives(labels[0]) == {index}
    torch.testing.assert_close(loc_t[0, index], torch.zeros(4), atol=1e-5, rtol=0)
    # the transposed window matches the cell's other anchor
    box_t = torch.tensor([[cx - 40, cy - 20, cx + 40, cy + 20]]) / PX
    assert positives(match(box_t, torch.tensor([True]), anchors)[1][0]) == {index + 1}


def test_threshold_and_force_best():
    anchors = default_anchors()
    whole = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    yes = torch.tensor([True])
    # a lower threshold also takes the 3x3 centre cell's 120x160 and 160x120 anchors (IoU 19200/50176 = 0.38)
    assert positives(match(whole, yes, anchors, threshold=0.3)[1][0]) == {156, 157, 166, 167}
    # IoU must exceed the threshold: at 1.0 only the forced best anchor (the first of the tie) remains
    assert positives(match(whole, yes, anchors, threshold=1.0, force_best=True)[1][0]) == {166}
    assert positives(match(whole, yes, anchors, threshold=1.0, force_best=False)[1][0]) == set()
    # a small box overlapping no anchor above 0.5: force_best keeps one anchor, without it none
    small = torch.tensor([[100.0, 100.0, 120.0, 120.0]]) / PX
    forced = match(small, yes, anchors, threshold=0.5, force_best=True)[1][0]
    assert len(positives(forced)) == 1
    overlaps = iou(small, centre_to_corners(anchors))[0]
    assert positives(forced) == {int(overlaps.argmax())}
    assert positives(match(small, yes, anchors, threshold=0.5, force_best=False)[1][0]) == set()


def test_match_is_batched_and_ignores_images_without_box():
    anchors = default_anchors()
    boxes = torch.tensor([[float("nan")] * 4, [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    has_box = torch.tensor([False, True, False])
    loc_t, labels = match(boxes, has_box, anchors)
    assert loc_t.shape == (3, 168, 4)
    assert torch.isfinite(loc_t).all()
    assert positives(labels[0]) == set() and positives(labels[2]) == set()
    assert positives(labels[1]) == {166, 167}
    assert torch.all(loc_t[0] == 0) and torch.all(loc_t[2] == 0)
